import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import {
  BROADCAST,
  compatibilityReachable,
  decodeCompatibilityMsi,
  encodeCompatibilityMsi,
} from './msi-format.js';

const PLAIN = { extendedDestinationId: false };
const EXT = { extendedDestinationId: true };

describe('compatibility-format MSIs (SDM §11.11)', () => {
  it('decodes destination [19:12], redirection hint [3], destination mode [2], vector, delivery mode, trigger', () => {
    expect(decodeCompatibilityMsi(0xfee0_300cn, 0xc141, PLAIN)).toEqual({
      ok: true,
      interrupt: {
        vector: 0x41,
        destination: 3,
        destinationMode: 'logical',
        deliveryMode: 'lowest-priority',
        trigger: 'level',
        redirectionHint: true,
      },
    });
    expect(decodeCompatibilityMsi(0xfee0_1000n, 0x0430, PLAIN)).toMatchObject({
      interrupt: {
        vector: 0x30,
        destination: 1,
        destinationMode: 'physical',
        deliveryMode: 'nmi',
        trigger: 'edge',
        redirectionHint: false,
      },
    });
  });

  it('reads address bits [11:5] as destination bits [14:8] only with the extended destination ID', () => {
    expect(decodeCompatibilityMsi(0xfee2_c020n, 0x20, EXT)).toMatchObject({
      interrupt: { destination: 300 },
    });
    expect(decodeCompatibilityMsi(0xfee2_c020n, 0x20, PLAIN)).toMatchObject({
      interrupt: { destination: 0x2c },
    });
    expect(decodeCompatibilityMsi(0xfeef_ffe0n, 0x20, EXT)).toMatchObject({
      interrupt: { destination: 0x7fff },
    });
  });

  it('0xFF is the broadcast, widened to all ones; with extended bits set it is an ID', () => {
    expect(decodeCompatibilityMsi(0xfeef_f000n, 0x20, PLAIN)).toMatchObject({
      interrupt: { destination: BROADCAST },
    });
    expect(decodeCompatibilityMsi(0xfeef_f000n, 0x20, EXT)).toMatchObject({
      interrupt: { destination: BROADCAST },
    });
    expect(decodeCompatibilityMsi(0xfeef_f020n, 0x20, EXT)).toMatchObject({
      interrupt: { destination: 0x1ff },
    });
  });

  it('refuses the remappable format, reserved delivery modes, level deasserts and addresses outside the window', () => {
    const reason = (address: bigint, data: number) => {
      const d = decodeCompatibilityMsi(address, data, PLAIN);
      return d.ok ? undefined : d.reason;
    };
    expect(reason(0xfee0_0010n, 0)).toMatch(/remappable-format/);
    expect(reason(0xfee0_0000n, 0x0320)).toBe('reserved delivery mode 0b11');
    expect(reason(0xfee0_0000n, 0x0620)).toBe('reserved delivery mode 0b110');
    expect(reason(0xfee0_0000n, 0x8020)).toBe('level-triggered deassert message');
    expect(reason(0xfef0_0000n, 0x20)).toMatch(/outside the interrupt window/);
    expect(reason(0xfedf_ffffn, 0x20)).toMatch(/outside the interrupt window/);
  });

  it('encodes what it decodes', () => {
    const interrupt = {
      vector: 0x41,
      destination: 300,
      destinationMode: 'logical',
      deliveryMode: 'lowest-priority',
      trigger: 'level',
      redirectionHint: true,
    } as const;
    const message = encodeCompatibilityMsi(interrupt, EXT);
    expect(message).toEqual({ address: 0xfee2_c02cn, data: 0xc141 });
    expect(decodeCompatibilityMsi(message.address, message.data, EXT)).toEqual({ ok: true, interrupt });
    const plain = {
      vector: 0x20,
      destination: 5,
      destinationMode: 'physical',
      deliveryMode: 'fixed',
      trigger: 'edge',
    } as const;
    expect(encodeCompatibilityMsi(plain, PLAIN)).toEqual({ address: 0xfee0_5000n, data: 0x20 });
    expect(encodeCompatibilityMsi({ ...plain, destination: BROADCAST }, PLAIN).address).toBe(0xfeef_f000n);
  });

  it('EINVAL for a destination the format cannot hold', () => {
    const at = (destination: number, options = PLAIN) =>
      errnoOf(() =>
        encodeCompatibilityMsi(
          { vector: 0x20, destination, destinationMode: 'physical', deliveryMode: 'fixed', trigger: 'edge' },
          options,
        ),
      );
    expect(at(254)).toBeUndefined();
    expect(at(255)).toBe('EINVAL');
    expect(at(300)).toBe('EINVAL');
    expect(at(300, EXT)).toBeUndefined();
    expect(at(0x7fff, EXT)).toBeUndefined();
    expect(at(0x8000, EXT)).toBe('EINVAL');
  });

  it('reaches APIC IDs up to 254, or up to 32767 but 255 with the extended destination ID', () => {
    expect([0, 254, 255, 256].map((id) => compatibilityReachable(id, PLAIN))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect([254, 255, 256, 0x7fff, 0x8000].map((id) => compatibilityReachable(id, EXT))).toEqual([
      true,
      false,
      true,
      true,
      false,
    ]);
  });
});
