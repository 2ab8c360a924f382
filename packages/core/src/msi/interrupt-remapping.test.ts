import { describe, expect, it, vi } from 'vitest';
import type { IommuDeviceRef } from '../iommu/driver.js';
import {
  decodeDeliveryMode,
  encodeDeliveryMode,
  type InterruptRemappingDriver,
  inInterruptWindow,
  remapperFor,
  X86_INTERRUPT_WINDOW,
} from './interrupt-remapping.js';

describe('the x86 interrupt window', () => {
  it('is 0xFEE0_0000 … 0xFEEF_FFFF', () => {
    expect(X86_INTERRUPT_WINDOW).toEqual({ base: 0xfee0_0000n, size: 0x10_0000n });
    expect([0xfedf_ffffn, 0xfee0_0000n, 0xfeef_ffffn, 0xfef0_0000n].map(inInterruptWindow)).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });
});

describe('x86 delivery modes', () => {
  it('names every 3-bit encoding; the reserved ones are undefined', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(decodeDeliveryMode)).toEqual([
      'fixed',
      'lowest-priority',
      'smi',
      undefined,
      'nmi',
      'init',
      undefined,
      'extint',
    ]);
  });

  it('encodes each mode as its 3 bits, and decodes only the low three bits of a field', () => {
    const modes = ['fixed', 'lowest-priority', 'smi', 'nmi', 'init', 'extint'] as const;
    expect(modes.map(encodeDeliveryMode)).toEqual([0, 1, 2, 4, 5, 7]);
    expect(decodeDeliveryMode(0b1100)).toBe('nmi');
  });
});

describe('remapperFor', () => {
  it('binds every call of the driver’s IR domain to the device, and passes the answers back', () => {
    const device = { name: 'nic0' } as IommuDeviceRef;
    const message = { address: 0xfee0_0010n, data: 0 };
    const driver: InterruptRemappingDriver = {
      capabilities: { x2apic: true, posting: false },
      allocate: vi.fn(() => 7),
      program: vi.fn(),
      compose: vi.fn(() => message),
      invalidate: vi.fn(),
      free: vi.fn(),
    };
    const remapper = remapperFor(driver, device);
    const target = { kind: 'post' as const, descriptor: 0x1000n, vector: 0x30 };
    expect(remapper.capabilities).toBe(driver.capabilities);
    expect(remapper.allocate(2)).toBe(7);
    remapper.program(7, target, { invalidate: false });
    expect(remapper.compose(8)).toBe(message);
    remapper.invalidate(7, 2);
    remapper.free(7, 2);
    expect(driver.allocate).toHaveBeenCalledWith(device, 2);
    expect(driver.program).toHaveBeenCalledWith(device, 7, target, { invalidate: false });
    expect(driver.compose).toHaveBeenCalledWith(device, 8);
    expect(driver.invalidate).toHaveBeenCalledWith(device, 7, 2);
    expect(driver.free).toHaveBeenCalledWith(device, 7, 2);
  });
});
