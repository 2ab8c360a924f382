/**
 * VtdIrDomain against a real VtdHardware: set-up through the registers, entries in the table the unit
 * latched, IEC invalidations through the invalidation queue, and device MSI writes remapped (or blocked)
 * by `vtd.interruptRemapping.request`.
 */
import {
  type DevicePciControl,
  errnoOf,
  FrameAllocator,
  type IommuDeviceRef,
  type X86Interrupt,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type MmioRig, mmioRig } from '../../test/mmio-rig.js';
import { IR_FR } from '../hw/fault-reasons.js';
import { encodeInvDescriptor, INV_TYPE, type InvDescriptorInit } from '../hw/inv-descriptors.js';
import { decodeIrte, decodeRemappableMsi, IRTE_SVT } from '../hw/irte.js';
import { GCMD_CFI, GCMD_QIE, GSTS_CFIS, GSTS_IRES, GSTS_IRTPS, IQA_DW, IRTA_EIME, REG } from '../hw/regs.js';
import { INTR_REMAP_TABLE_ENTRIES, VtdIrDomain } from './ir-domain.js';

const pci: DevicePciControl = {
  hasAts: false,
  hasPri: false,
  hasPasid: false,
  setAtsEnabled: () => {},
  setPriEnabled: () => {},
  setPasidEnabled: () => {},
};
const device = (name: string, rid: number): IommuDeviceRef => ({
  name,
  rid,
  streamId: rid,
  pasidBits: 0,
  pci,
});
const NIC = device('nic', (3 << 8) | 0x10);
const GPU = device('gpu', (4 << 8) | 0x00);

const interrupt = (vector: number, destination: number): X86Interrupt => ({
  vector,
  destination,
  destinationMode: 'physical',
  deliveryMode: 'fixed',
  trigger: 'edge',
});

/** The invalidation queue, 256-bit descriptors (scalable mode): descriptors, then a completing wait. */
function invalidationQueue(rig: MmioRig) {
  const base = rig.pages();
  const status = rig.pages();
  rig.mmio64(REG.IQA, base + IQA_DW);
  rig.command(GCMD_QIE);
  let tail = 0;
  return (...descriptors: InvDescriptorInit[]) => {
    const wait: InvDescriptorInit = { type: INV_TYPE.WAIT, sw: true, statusData: 1, statusAddr: status };
    for (const d of [...descriptors, wait]) {
      const words = new Uint32Array(8);
      encodeInvDescriptor(d, words, 0, true);
      rig.put(base + tail, words);
      tail = (tail + 32) % 4096;
    }
    rig.put(status, Uint32Array.of(0));
    rig.mmio(REG.IQT, tail);
    if (rig.word(status) !== 1) throw new Error('the invalidation queue did not complete');
  };
}

/** A unit with QI on and an IR domain over it; `setup` false leaves remapping off. */
function unit(
  options: Record<string, unknown> = {},
  { setup = true, entries = undefined as number | undefined } = {},
) {
  const rig = mmioRig(options);
  const arena = rig.pages(512);
  const memory = new FrameAllocator([{ base: arena, size: 512 * 4096 }], (base, bytes) =>
    rig.put(Number(base), new Uint32Array(bytes / 4)),
  );
  const sync = invalidationQueue(rig);
  const flushes: [number | undefined, number][] = [];
  const ir = new VtdIrDomain({
    instance: 'dmar0',
    readReg: rig.reg,
    writeReg: rig.mmio,
    memory,
    bus: rig.bus,
    counter: rig.driver,
    features: rig.vtd.features,
    entries,
    iecFlush: (index, mask) => {
      flushes.push([index, mask]);
      sync(
        index === undefined
          ? { type: INV_TYPE.IEC, granularity: 0 }
          : { type: INV_TYPE.IEC, granularity: 1, iidx: index, im: mask },
      );
    },
  });
  if (setup) ir.setup();
  const hw = rig.vtd.interruptRemapping!;
  const send = (dev: IommuDeviceRef, index: number) => {
    const msg = ir.compose(dev, index);
    return hw.request(dev.streamId, msg.address, msg.data);
  };
  const irte = (index: number) => {
    const words = new Uint32Array(4);
    rig.bus.readWords(Number(ir.table) + 16 * index, words, 4, rig.driver);
    return decodeIrte(words);
  };
  return { rig, ir, hw, memory, flushes, send, irte };
}

describe('setup', () => {
  it('IRTA = table | EIME | S 15, SIRTP, a global IEC invalidation, IRE; CFI stays 0', () => {
    const { rig, ir, hw, flushes } = unit();
    expect(ir.entries).toBe(INTR_REMAP_TABLE_ENTRIES);
    const table = Number(ir.table);
    expect(rig.reg(REG.IRTA) >>> 0).toBe((table % 2 ** 32) + IRTA_EIME + 15);
    expect(rig.reg(REG.IRTA + 4)).toBe(Math.floor(table / 2 ** 32));
    expect(hw.latchedTable).toEqual({ base: table, entries: 65536, eim: true });
    const gsts = rig.reg(REG.GSTS);
    expect(gsts & (GSTS_IRTPS | GSTS_IRES)).toBe(GSTS_IRTPS | GSTS_IRES);
    expect(gsts & GSTS_CFIS).toBe(0);
    expect(flushes).toEqual([[undefined, 0]]);
    expect(rig.vtd.invalidationQueue!.performed.iec).toBe(1);
    expect(ir.capabilities).toEqual({ x2apic: true, posting: true });
    expect(ir.maxHandleMask).toBe(15);
    // Compatibility-format interrupts are blocked (fault 0x25).
    const compat = hw.request(NIC.streamId, 0xfee0_0000n, 0x41);
    expect(compat).toMatchObject({ kind: 'blocked', fault: { vendorCode: 'DMAR_FR_0x25' } });
    expect(errnoOf(() => ir.setup())).toBe('EBUSY');
  });

  it('with CAP.ESIRTPS the SIRTP invalidates the IEC itself: no global invalidation is sent', () => {
    const { flushes, rig } = unit({ sirtpInvalidates: true });
    expect(flushes).toEqual([]);
    expect(rig.vtd.invalidationQueue!.performed.iec).toBe(0);
  });

  it('without EIM: xAPIC destinations, EIME clear, a smaller table as asked', () => {
    const { rig, ir, hw, irte } = unit({ extendedInterruptMode: false }, { entries: 256 });
    expect(ir.capabilities.x2apic).toBe(false);
    expect(rig.reg(REG.IRTA) & (IRTA_EIME | 0xf)).toBe(7);
    expect(hw.latchedTable.entries).toBe(256);
    const index = ir.allocate(NIC, 1);
    ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x31, 0x12) });
    expect(irte(index)).toMatchObject({ mode: 'remapped', dst: 0x1200 });
    expect(hw.request(NIC.streamId, ir.compose(NIC, index).address, 0)).toMatchObject({
      kind: 'remapped',
      interrupt: { vector: 0x31, destination: 0x12 },
    });
    expect(errnoOf(() => ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x31, 0x100) }))).toBe(
      'EINVAL',
    );
  });

  it('a CFIS left set by firmware is cleared after IRE', () => {
    const { rig, ir } = unit({}, { setup: false });
    rig.command(GCMD_CFI);
    expect(rig.reg(REG.GSTS) & GSTS_CFIS).toBe(GSTS_CFIS);
    ir.setup();
    expect(rig.reg(REG.GSTS) & (GSTS_CFIS | GSTS_IRES)).toBe(GSTS_IRES);
  });

  it('a unit that never acknowledges SIRTP makes setup fail with ETIMEDOUT', () => {
    const { ir } = unit(
      { interruptRemapping: false, extendedInterruptMode: false, postedInterrupts: false },
      { setup: false },
    );
    expect(errnoOf(() => ir.setup())).toBe('ETIMEDOUT');
  });

  it('teardown: IRE off (requests pass through unremapped), the table freed, entries forgotten', () => {
    const { rig, ir, hw, memory, flushes } = unit();
    const index = ir.allocate(NIC, 1);
    ir.teardown();
    expect(flushes).toEqual([
      [undefined, 0],
      [undefined, 0],
    ]);
    expect(rig.reg(REG.GSTS) & GSTS_IRES).toBe(0);
    expect(memory.allocatedFrameCount).toBe(0);
    expect(hw.request(NIC.streamId, 0xfee0_0000n, 0x41)).toEqual({ kind: 'passthrough' });
    expect(errnoOf(() => ir.compose(NIC, index))).toBe('ENODEV');
    ir.teardown();
  });
});

describe('allocate, program, compose: a device MSI is remapped', () => {
  it('the entry carries P, the interrupt and source validation SVT 01 / SQ 0 / SID; the message its handle', () => {
    const { ir, irte, send, flushes } = unit();
    const index = ir.allocate(NIC, 1);
    ir.program(NIC, index, {
      kind: 'remap',
      interrupt: { ...interrupt(0x45, 0x1_0002), trigger: 'level', destinationMode: 'logical' },
    });
    expect(flushes.at(-1)).toEqual([index, 0]);
    expect(irte(index)).toMatchObject({
      mode: 'remapped',
      present: true,
      vector: 0x45,
      dst: 0x1_0002,
      tm: true,
      dm: true,
      svt: IRTE_SVT.MASK,
      sq: 0,
      sid: NIC.streamId,
    });
    const msg = ir.compose(NIC, index);
    expect(decodeRemappableMsi(msg.address, msg.data)).toMatchObject({
      remappable: true,
      subhandleValid: true,
      handle: index,
      index,
    });
    expect(send(NIC, index)).toEqual({
      kind: 'remapped',
      index,
      interrupt: {
        vector: 0x45,
        destination: 0x1_0002,
        destinationMode: 'logical',
        deliveryMode: 'fixed',
        trigger: 'level',
        redirectionHint: false,
      },
    });
  });

  it('another device sending the same message is refused by source validation (0x26)', () => {
    const { ir, hw } = unit();
    const index = ir.allocate(NIC, 1);
    ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x45, 1) });
    const msg = ir.compose(NIC, index);
    const outcome = hw.request(GPU.streamId, msg.address, msg.data);
    expect(outcome).toMatchObject({
      kind: 'blocked',
      fault: { vendorCode: `DMAR_FR_0x${IR_FR.SOURCE_INVALID.toString(16)}` },
    });
  });

  it('a multi-entry allocation is a power-of-two aligned block; each entry is handle + subhandle', () => {
    const { ir, send } = unit();
    const one = ir.allocate(GPU, 1);
    const block = ir.allocate(NIC, 3);
    expect(one).toBe(0);
    expect(block).toBe(4);
    expect(ir.allocate(GPU, 1)).toBe(1);
    for (let i = 0; i < 4; i++)
      ir.program(NIC, block + i, { kind: 'remap', interrupt: interrupt(0x50 + i, 2) });
    const msg = ir.compose(NIC, block + 2);
    expect(decodeRemappableMsi(msg.address, msg.data)).toMatchObject({ handle: block, index: block + 2 });
    expect(msg.data).toBe(2);
    expect(send(NIC, block + 2)).toMatchObject({ kind: 'remapped', index: 6, interrupt: { vector: 0x52 } });
  });

  it('posting (CAP.PI): the posted-format entry records the vector in the descriptor', () => {
    const { ir, send, memory, irte } = unit();
    const pid = memory.allocBytes(64, 64);
    const index = ir.allocate(NIC, 1);
    ir.program(NIC, index, { kind: 'post', descriptor: pid, vector: 0x66 });
    expect(irte(index)).toMatchObject({ mode: 'posted', present: true, sid: NIC.streamId, svt: 1 });
    expect(send(NIC, index)).toMatchObject({
      kind: 'posted',
      index,
      posted: { descriptor: pid, vector: 0x66 },
    });
    expect(errnoOf(() => ir.program(NIC, index, { kind: 'post', descriptor: pid + 8n, vector: 0x66 }))).toBe(
      'EINVAL',
    );
  });
});

describe('the interrupt entry cache', () => {
  it('reprogramming without invalidation leaves the stale entry in use until the IEC invalidation', () => {
    const { ir, send, rig } = unit();
    const index = ir.allocate(NIC, 1);
    ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x40, 1) });
    expect(send(NIC, index)).toMatchObject({ interrupt: { vector: 0x40 } });
    const iecs = rig.vtd.invalidationQueue!.performed.iec;
    ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x41, 1) }, { invalidate: false });
    expect(rig.vtd.invalidationQueue!.performed.iec).toBe(iecs);
    expect(send(NIC, index)).toMatchObject({ interrupt: { vector: 0x40 } });
    ir.invalidate(NIC, index, 1);
    expect(send(NIC, index)).toMatchObject({ interrupt: { vector: 0x41 } });
    // Programming with the default invalidation takes effect at once.
    ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(0x42, 1) });
    expect(send(NIC, index)).toMatchObject({ interrupt: { vector: 0x42 } });
  });

  it('a range invalidation is one aligned index-selective descriptor covering it', () => {
    const { ir, flushes } = unit();
    ir.allocate(GPU, 4);
    const block = ir.allocate(NIC, 8);
    ir.invalidate(NIC, block + 3, 2);
    expect(flushes.at(-1)).toEqual([block, 3]);
    ir.invalidate(NIC, block + 6, 2);
    expect(flushes.at(-1)).toEqual([block + 6, 1]);
  });

  it('free clears the entries and invalidates them: the next request finds the entry not present', () => {
    const { ir, send, hw, irte, flushes } = unit();
    const block = ir.allocate(NIC, 2);
    ir.program(NIC, block, { kind: 'remap', interrupt: interrupt(0x40, 1) });
    ir.program(NIC, block + 1, { kind: 'remap', interrupt: interrupt(0x41, 1) });
    const msg = ir.compose(NIC, block);
    expect(send(NIC, block).kind).toBe('remapped');
    ir.free(NIC, block, 2);
    expect(flushes.at(-1)).toEqual([block, 1]);
    expect(irte(block).present).toBe(false);
    expect(hw.request(NIC.streamId, msg.address, msg.data)).toMatchObject({
      kind: 'blocked',
      fault: { vendorCode: `DMAR_FR_0x${IR_FR.IRTE_NOT_PRESENT.toString(16)}` },
    });
    // The entries are free again.
    expect(ir.allocate(GPU, 2)).toBe(block);
  });
});

describe('misuse', () => {
  it('an entry the device does not own is EINVAL everywhere', () => {
    const { ir } = unit();
    const index = ir.allocate(NIC, 1);
    const target = { kind: 'remap', interrupt: interrupt(0x40, 1) } as const;
    expect(errnoOf(() => ir.program(GPU, index, target))).toBe('EINVAL');
    expect(errnoOf(() => ir.compose(GPU, index))).toBe('EINVAL');
    expect(errnoOf(() => ir.invalidate(GPU, index, 1))).toBe('EINVAL');
    expect(errnoOf(() => ir.free(GPU, index, 1))).toBe('EINVAL');
    expect(errnoOf(() => ir.program(NIC, index + 1, target))).toBe('EINVAL');
    expect(errnoOf(() => ir.free(NIC, index, 2))).toBe('EINVAL');
    expect(errnoOf(() => ir.compose(NIC, INTR_REMAP_TABLE_ENTRIES))).toBe('EINVAL');
    expect(errnoOf(() => ir.program(NIC, index, { kind: 'remap', interrupt: interrupt(256, 1) }))).toBe(
      'EINVAL',
    );
  });

  it('bad counts are EINVAL, a full table ENOSPC, a block beyond MHMV EINVAL, use before setup ENODEV', () => {
    const { ir } = unit({}, { entries: 4 });
    expect(errnoOf(() => ir.allocate(NIC, 0))).toBe('EINVAL');
    expect(errnoOf(() => ir.allocate(NIC, 1.5))).toBe('EINVAL');
    expect(ir.allocate(NIC, 2)).toBe(0);
    expect(ir.allocate(GPU, 1)).toBe(2);
    expect(errnoOf(() => ir.allocate(GPU, 2))).toBe('ENOSPC');
    expect(ir.allocate(GPU, 1)).toBe(3);
    expect(errnoOf(() => ir.allocate(GPU, 1))).toBe('ENOSPC');
    expect(errnoOf(() => unit().ir.allocate(NIC, 2 ** 16 + 1))).toBe('EINVAL');
    expect(errnoOf(() => unit({}, { setup: false }).ir.allocate(NIC, 1))).toBe('ENODEV');
    expect(errnoOf(() => unit({}, { entries: 3, setup: false }))).toBe('EINVAL');
  });

  it('posting without CAP.PI is EOPNOTSUPP', () => {
    const { ir } = unit({ postedInterrupts: false });
    expect(ir.capabilities.posting).toBe(false);
    const index = ir.allocate(NIC, 1);
    expect(
      errnoOf(() => ir.program(NIC, index, { kind: 'post', descriptor: 0x1_0000_0000n, vector: 1 })),
    ).toBe('EOPNOTSUPP');
  });
});

describe('argument checks, each with its errno and the device in its context', () => {
  const contextOf = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      return (error as { code: string; context: unknown }).context;
    }
    return undefined;
  };

  it('vectors 0..255 and destinations within the destination mode (x2APIC: 32 bits)', () => {
    const { ir } = unit();
    const at = ir.allocate(NIC, 1);
    for (const vector of [0, 0xff]) ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(vector, 1) });
    for (const vector of [-1, 0x100, 1.5])
      expect(errnoOf(() => ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(vector, 1) }))).toBe(
        'EINVAL',
      );
    expect(contextOf(() => ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x100, 1) }))).toEqual({
      device: 'nic',
    });
    ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x30, 0xffff_ffff) });
    ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x30, 0) });
    for (const destination of [-1, 2 ** 32, 0.5])
      expect(
        errnoOf(() => ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x30, destination) })),
      ).toBe('EINVAL');
    expect(contextOf(() => ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x30, -1) }))).toEqual({
      device: 'nic',
    });
    const xapic = unit({ extendedInterruptMode: false, postedInterrupts: false });
    const one = xapic.ir.allocate(NIC, 1);
    xapic.ir.program(NIC, one, { kind: 'remap', interrupt: interrupt(0x30, 0xff) });
    expect(
      errnoOf(() => xapic.ir.program(NIC, one, { kind: 'remap', interrupt: interrupt(0x30, 0x100) })),
    ).toBe('EINVAL');
  });

  it('posted descriptors: 64-byte aligned below 2^64; the redirection hint is written as asked', () => {
    const { ir, irte } = unit();
    const at = ir.allocate(NIC, 1);
    ir.program(NIC, at, { kind: 'post', vector: 0x40, descriptor: 0n });
    ir.program(NIC, at, { kind: 'post', vector: 0x40, descriptor: 2n ** 64n - 64n });
    for (const descriptor of [-64n, 2n ** 64n, 32n])
      expect(errnoOf(() => ir.program(NIC, at, { kind: 'post', vector: 0x40, descriptor }))).toBe('EINVAL');
    expect(contextOf(() => ir.program(NIC, at, { kind: 'post', vector: 0x40, descriptor: 32n }))).toEqual({
      device: 'nic',
    });
    ir.program(NIC, at, { kind: 'remap', interrupt: { ...interrupt(0x30, 1), redirectionHint: true } });
    expect(irte(at)).toMatchObject({ rh: true });
    ir.program(NIC, at, { kind: 'remap', interrupt: interrupt(0x30, 1) });
    expect(irte(at)).toMatchObject({ rh: false });
  });

  it('ranges: whole, owned, inside the table; freeing frees exactly the range', () => {
    const { ir } = unit();
    const at = ir.allocate(NIC, 4);
    for (const [index, count] of [
      [at, 0],
      [at, 1.5],
      [-1, 1],
      [at + 0.5, 1],
    ] as const)
      expect(errnoOf(() => ir.invalidate(NIC, index, count))).toBe('EINVAL');
    expect(errnoOf(() => ir.invalidate(NIC, at, 5))).toBe('EINVAL');
    expect(errnoOf(() => ir.invalidate(GPU, at, 1))).toBe('EINVAL');
    expect(errnoOf(() => ir.compose(NIC, ir.entries))).toBe('EINVAL');
    expect(contextOf(() => ir.invalidate(GPU, at, 1))).toMatchObject({ device: 'gpu' });
    ir.free(NIC, at, 2);
    expect(errnoOf(() => ir.compose(NIC, at + 1))).toBe('EINVAL');
    expect(() => ir.compose(NIC, at + 2)).not.toThrow();
    // The freed two are allocatable again, as one aligned block.
    expect(ir.allocate(GPU, 2)).toBe(at);
  });
});
