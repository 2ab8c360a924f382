/**
 * The mock's interrupt remapping: the table the driver writes (byte for byte), the unit's lookups and
 * every fault it records, the interrupt entry cache (stale until invalidated), and the IR domain's rules.
 */
import { type InterruptRequestOutcome, join64, type X86Interrupt } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type MockIommuDriver, type MockIommuHardware, mockIrte, mockRegs } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const { R } = mockRegs;
const MMIO = 0x0900_0000;
const newSystem = mockSystemsPerTest();

const INTERRUPT: X86Interrupt = {
  vector: 0x41,
  destination: 0x1_0002,
  destinationMode: 'physical',
  deliveryMode: 'fixed',
  trigger: 'edge',
  redirectionHint: false,
};

async function setup(options = {}) {
  const system = await newSystem({
    iommus: [{ name: 'iommu0', base: '0x0900_0000', options: { iotlbEntries: 8, ...options } }],
  });
  const instance = system.iommu('iommu0');
  const hw = instance.hardware as MockIommuHardware;
  const driver = instance.driver as MockIommuDriver;
  const who = system.bus.counter('test');
  const reg = (offset: number) => {
    const r = system.bus.read(MMIO + offset, 4, who);
    return r.ok ? Number(r.value) : -1;
  };
  const setReg = (offset: number, value: number) => system.bus.write(MMIO + offset, 4, value, who);
  const nic = system.device('nic0');
  const nvme = system.device('nvme0');
  const entryWords = (index: number) => {
    const base = join64(reg(R.IRT_BASE), reg(R.IRT_BASE + 4));
    const words = new Uint32Array(4);
    system.bus.readWords(Number(base) + index * 16, words, 4, who);
    return [...words];
  };
  return { system, instance, hw, driver, ir: driver.interruptRemapping!, reg, setReg, nic, nvme, entryWords };
}

const remapped = (interrupt: X86Interrupt, index: number): InterruptRequestOutcome => ({
  kind: 'remapped',
  index,
  interrupt,
});

describe('mock interrupt remapping: the table and the lookups', () => {
  it('the driver writes the entry byte for byte; the device sends the composed message and is remapped', async () => {
    const { hw, ir, nic, entryWords } = await setup();
    const index = ir.allocate(nic, 2);
    ir.program(nic, index + 1, {
      kind: 'remap',
      interrupt: { ...INTERRUPT, trigger: 'level', deliveryMode: 'nmi' },
    });
    // P | level | NMI (4) << 4 | vector << 16; destination; SID | SVT; reserved.
    expect(entryWords(index + 1)).toEqual([0x0041_0045, 0x1_0002, 0x1_0010, 0]);
    const message = ir.compose(nic, index + 1);
    expect(message).toEqual({ address: 0xfee0_0030n, data: 0 });
    expect(hw.interruptRemapping!.request(nic.streamId, message.address, message.data)).toEqual(
      remapped({ ...INTERRUPT, trigger: 'level', deliveryMode: 'nmi' }, index + 1),
    );
    expect(nic.msiWrite(message.address, message.data)).toEqual({ ok: true, bytes: 4, hpas: [] });
  });

  it('decodes logical destinations, redirection hints and every delivery mode the entry encodes', async () => {
    const { hw, ir, nic } = await setup();
    const index = ir.allocate(nic, 6);
    const modes = ['fixed', 'lowest-priority', 'smi', 'nmi', 'init', 'extint'] as const;
    modes.forEach((deliveryMode, i) => {
      const interrupt = {
        ...INTERRUPT,
        deliveryMode,
        destinationMode: 'logical' as const,
        redirectionHint: true,
      };
      ir.program(nic, index + i, { kind: 'remap', interrupt });
      expect(hw.interruptRemapping!.request(nic.streamId, ir.compose(nic, index + i).address, 0)).toEqual(
        remapped(interrupt, index + i),
      );
    });
  });

  it('blocks, records and reports each bad request with its code, the MSI address and the entry index', async () => {
    const { system, instance, hw, ir, nic, nvme, reg, setReg } = await setup();
    const unit = hw.interruptRemapping!;
    const index = ir.allocate(nic, 1);
    ir.program(nic, index, { kind: 'remap', interrupt: INTERRUPT });
    const spare = ir.allocate(nic, 1);
    const cases: [number, bigint, string, number][] = [
      [nvme.streamId, mockIrte.remappableAddress(index), 'MOCK_IR_SOURCE', index],
      [nic.streamId, mockIrte.remappableAddress(spare), 'MOCK_IR_NOT_PRESENT', spare],
      [nic.streamId, mockIrte.remappableAddress(1024), 'MOCK_IR_INDEX', 1024],
      [nic.streamId, 0xfee0_1000n, 'MOCK_IR_COMPAT', 0],
    ];
    for (const [streamId, address, code] of cases) {
      const outcome = unit.request(streamId, address, 0);
      expect(outcome).toEqual({
        kind: 'blocked',
        fault: {
          kind: 'interrupt',
          vendorCode: code,
          streamId,
          pasid: -1,
          iova: address,
          access: 2,
          recorded: true,
        },
      });
    }
    system.serviceInterrupts();
    expect(instance.faults.records.map((f) => [f.fault.vendorCode, f.device, f.fault.iova])).toEqual(
      cases.map(([streamId, address, code]) => [code, streamId === nic.streamId ? 'nic0' : 'nvme0', address]),
    );
    // The record's w3 holds the entry index.
    const log = join64(reg(R.FLOG_BASE), reg(R.FLOG_BASE + 4));
    const words = new Uint32Array(8);
    system.bus.readWords(Number(log), words, 8, system.bus.counter('test'));
    expect(words[3]).toBe(index);
    // With CTRL.IR_COMPAT, a compatibility-format request goes on unchanged.
    setReg(R.CTRL, reg(R.CTRL) | mockRegs.CTRL_IR_COMPAT);
    expect(unit.request(nic.streamId, 0xfee0_1000n, 0x31)).toEqual({ kind: 'passthrough' });
  });

  it('an entry with reserved bits set, or a table it cannot read, is a fault', async () => {
    const { system, hw, ir, nic, reg, setReg } = await setup();
    const index = ir.allocate(nic, 1);
    const base = Number(join64(reg(R.IRT_BASE), reg(R.IRT_BASE + 4)));
    const who = system.bus.counter('test');
    for (const words of [
      [0x0041_0001 | (1 << 8), 0, 0, 0],
      [0x0041_0001 | (3 << 4), 0, 0, 0],
      [0x0041_0001, 0, 1 << 17, 0],
      [0x0041_0001, 0, 0, 1],
    ]) {
      system.bus.writeWords(base + index * 16, words, 4, who);
      const outcome = hw.interruptRemapping!.request(nic.streamId, mockIrte.remappableAddress(index), 0);
      expect(outcome).toMatchObject({ kind: 'blocked', fault: { vendorCode: 'MOCK_IR_RESERVED' } });
    }
    setReg(R.IRT_BASE, 0x7000_0000);
    setReg(R.IRT_BASE + 4, 0);
    expect(hw.interruptRemapping!.request(nic.streamId, mockIrte.remappableAddress(0), 0)).toMatchObject({
      kind: 'blocked',
      fault: { vendorCode: 'MOCK_IR_FETCH_ABORT', recorded: true },
    });
  });

  it('with remapping off every request passes through, remappable or not', async () => {
    const { hw, ir, nic, reg, setReg } = await setup();
    const index = ir.allocate(nic, 1);
    setReg(R.CTRL, reg(R.CTRL) & ~mockRegs.CTRL_IR_EN);
    expect(hw.interruptRemapping!.request(nic.streamId, mockIrte.remappableAddress(index), 0)).toEqual({
      kind: 'passthrough',
    });
    expect(hw.interruptRemapping!.request(nic.streamId, 0xfee0_0000n, 0)).toEqual({ kind: 'passthrough' });
  });

  it('a hardware without the unit has no CAP.IR; its driver no IR domain and no hardware MSI window', async () => {
    const { hw, driver, reg, nic } = await setup({ interruptRemapping: false });
    expect(hw.interruptRemapping).toBeUndefined();
    expect(reg(R.CAP) & mockRegs.CAP_IR).toBe(0);
    expect(driver.interruptRemapping).toBeUndefined();
    expect(driver.reservedRegions(nic).map((r) => r.type)).toEqual(['sw-msi']);
  });

  it('the driver reserves the interrupt window as a hardware MSI window while remapping is on', async () => {
    const { driver, nic } = await setup();
    expect(driver.reservedRegions(nic)).toContainEqual({
      start: 0xfee0_0000n,
      length: 0x10_0000n,
      type: 'msi',
    });
  });
});

describe('mock interrupt remapping: the interrupt entry cache', () => {
  it('a reprogrammed entry stays stale until invalidated; the driver invalidates unless told not to', async () => {
    const { hw, ir, nic } = await setup();
    const unit = hw.interruptRemapping!;
    const index = ir.allocate(nic, 1);
    const address = ir.compose(nic, index).address;
    ir.program(nic, index, { kind: 'remap', interrupt: INTERRUPT });
    expect(unit.request(nic.streamId, address, 0)).toEqual(remapped(INTERRUPT, index));
    const moved = { ...INTERRUPT, destination: 7, vector: 0x52 };
    ir.program(nic, index, { kind: 'remap', interrupt: moved }, { invalidate: false });
    expect(unit.request(nic.streamId, address, 0)).toEqual(remapped(INTERRUPT, index));
    ir.invalidate(nic, index, 1);
    expect(unit.request(nic.streamId, address, 0)).toEqual(remapped(moved, index));
    ir.program(nic, index, { kind: 'remap', interrupt: INTERRUPT });
    expect(unit.request(nic.streamId, address, 0)).toEqual(remapped(INTERRUPT, index));
    expect(hw.stats()).toMatchObject({ iecHits: 1, iecMisses: 3 });
  });

  it('IEC drops only the named entries; IEC_ALL and INV ALL drop every one', async () => {
    const { hw, ir, nic } = await setup();
    const unit = hw.interruptRemapping!;
    const first = ir.allocate(nic, 3);
    for (let i = 0; i < 3; i++) ir.program(nic, first + i, { kind: 'remap', interrupt: INTERRUPT });
    for (let i = 0; i < 3; i++) unit.request(nic.streamId, ir.compose(nic, first + i).address, 0);
    expect(unit.invalidate(first + 1, 1)).toBe(1);
    expect(unit.invalidate(first + 1, 1)).toBe(0);
    expect(unit.invalidateAll()).toBe(2);
  });

  it('a freed entry is cleared and invalidated: the device’s next request is blocked', async () => {
    const { hw, ir, nic, entryWords } = await setup();
    const index = ir.allocate(nic, 1);
    ir.program(nic, index, { kind: 'remap', interrupt: INTERRUPT });
    const address = ir.compose(nic, index).address;
    expect(hw.interruptRemapping!.request(nic.streamId, address, 0).kind).toBe('remapped');
    ir.free(nic, index, 1);
    expect(entryWords(index)).toEqual([0, 0, 0, 0]);
    expect(hw.interruptRemapping!.request(nic.streamId, address, 0)).toMatchObject({
      kind: 'blocked',
      fault: { vendorCode: 'MOCK_IR_NOT_PRESENT' },
    });
    // Freed entries are handed out again.
    expect(ir.allocate(nic, 1)).toBe(index);
  });
});

describe('mock IR domain misuse', () => {
  it('an entry another device owns, or none owns, is EINVAL for every operation', async () => {
    const { ir, nic, nvme } = await setup();
    const index = ir.allocate(nic, 2);
    const target = { kind: 'remap' as const, interrupt: INTERRUPT };
    const context = expect.objectContaining({
      code: 'EINVAL',
      context: expect.objectContaining({ device: 'nvme0' }),
    });
    expect(() => ir.program(nvme, index, target)).toThrow(context);
    expect(() => ir.compose(nvme, index + 1)).toThrow(context);
    expect(() => ir.invalidate(nvme, index, 1)).toThrow(context);
    expect(() => ir.free(nvme, index, 2)).toThrow(context);
    // A range that runs past the owned entries.
    expect(() => ir.free(nic, index, 3)).toThrow(
      expect.objectContaining({ code: 'EINVAL', context: { device: 'nic0', index: index + 2 } }),
    );
    expect(() => ir.invalidate(nic, index, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => ir.allocate(nic, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => ir.allocate(nic, 1.5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('vectors and destinations out of range are EINVAL; posting is EOPNOTSUPP; a full table ENOSPC', async () => {
    const { ir, nic, entryWords } = await setup();
    const index = ir.allocate(nic, 1);
    for (const bad of [
      { vector: 256 },
      { vector: -1 },
      { vector: 1.5 },
      { destination: 2 ** 32 },
      { destination: -1 },
    ]) {
      expect(() => ir.program(nic, index, { kind: 'remap', interrupt: { ...INTERRUPT, ...bad } })).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
    }
    expect(() => ir.program(nic, index, { kind: 'post', descriptor: 0x1000n, vector: 0x30 })).toThrow(
      expect.objectContaining({ code: 'EOPNOTSUPP' }),
    );
    expect(entryWords(index)).toEqual([0, 0, 0, 0]);
    expect(ir.capabilities).toEqual({ x2apic: true, posting: false });
    expect(() => ir.allocate(nic, 1024)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(ir.allocate(nic, 1023)).toBe(index + 1);
    expect(() => ir.allocate(nic, 1)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });

  it('allocates the first free run long enough', async () => {
    const { ir, nic } = await setup();
    expect(ir.allocate(nic, 2)).toBe(0);
    expect(ir.allocate(nic, 1)).toBe(2);
    ir.free(nic, 0, 2);
    expect(ir.allocate(nic, 3)).toBe(3);
    expect(ir.allocate(nic, 2)).toBe(0);
  });
});
