/**
 * A VT-d unit on a memory bus with RAM and an MSI sink (RAM over the interrupt window, so a test reads the
 * unit's own interrupt messages back), programmed through MMIO only — what a driver does.
 */
import { FrameAllocator, hpa, InterruptController, MemoryBus, Tracer } from '@iommukit/core';
import { IoPageTable, vtdSsFormat } from '@iommukit/pagetables';
import { VtdOptionsSchema } from '../src/hw/options.js';
import { GCMD_SRTP, REG } from '../src/hw/regs.js';
import { encodeLegacyContext, encodeLegacyRootEntry } from '../src/hw/root-context.js';
import { VtdHardware, type VtdHardwareHooks } from '../src/hw/vtd.js';

export const VTD_BASE = 0xfed9_0000;
export const RAM_BASE = 0x1_0000_0000;
export const MSI_WINDOW = 0xfee0_0000;

export function mmioRig(
  options: Record<string, unknown> = {},
  tracer = new Tracer(),
  hooks: VtdHardwareHooks = {},
) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, 64 * 2 ** 20);
  bus.addRam('msi', MSI_WINDOW, 0x10_0000);
  const interrupts = new InterruptController();
  const vtd = new VtdHardware(
    {
      instance: 'dmar0',
      base: hpa(VTD_BASE),
      options: VtdOptionsSchema.parse(options),
      bus,
      tracer,
      irq: (name) => interrupts.line(name),
    },
    hooks,
  );
  const driver = bus.counter('driver');
  let next = RAM_BASE;
  const mmio = (offset: number, value: number) => bus.write(VTD_BASE + offset, 4, value >>> 0, driver);
  const rig = {
    bus,
    vtd,
    driver,
    mmio,
    /** A 64-bit register as two 32-bit writes, low half first. */
    mmio64: (offset: number, value: number) => {
      mmio(offset, value % 2 ** 32);
      mmio(offset + 4, Math.floor(value / 2 ** 32));
    },
    reg: (offset: number) => {
      const r = bus.read(VTD_BASE + offset, 4, driver);
      return r.ok ? Number(r.value) : -1;
    },
    put: (addr: number, words: Uint32Array) => {
      if (!bus.writeWords(addr, words, words.length, driver)) throw new Error('no RAM there');
    },
    word: (addr: number) => {
      const w = new Uint32Array(1);
      bus.readWords(addr, w, 1, driver);
      return w[0]!;
    },
    /** `pages` fresh zeroed pages from RAM, in order. */
    pages: (count = 1) => {
      const at = next;
      next += count * 4096;
      return at;
    },
    /** GCMD as Linux writes it: GSTS's persistent bits with `bits` set (or cleared). */
    command: (bits: number, on = true) => {
      const persistent = rig.reg(0x1c) & 0x8680_0000;
      mmio(0x18, on ? persistent | bits : persistent & ~bits);
    },
  };
  return rig;
}

export type MmioRig = ReturnType<typeof mmioRig>;

/**
 * A legacy-mode unit (VER 5 unless `options` say otherwise) on which device `sid` translates two pages from
 * `iova` through a 4-level second stage in domain `did`, the root table latched by SRTP (translation off).
 */
export function legacyRig(
  target: { readonly sid: number; readonly did: number; readonly iova: number },
  options: Record<string, unknown> = {},
  tracer?: Tracer,
) {
  const rig = mmioRig({ scalableMode: false, ...options }, tracer);
  const root = rig.pages();
  const context = rig.pages();
  const tables = rig.pages(16);
  const memory = new FrameAllocator([{ base: tables, size: 16 * 4096 }], () => {});
  const ss = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), {
    bus: rig.bus,
    memory,
    counter: rig.driver,
  });
  const data = rig.pages(2);
  ss.map(BigInt(target.iova), BigInt(data), 0x2000n, { read: true, write: true });
  const { sid, did } = target;
  rig.put(root + (sid >>> 8) * 16, encodeLegacyRootEntry({ p: true, ctp: context }));
  rig.put(context + (sid & 0xff) * 16, encodeLegacyContext({ p: true, did, aw: 2, slptptr: ss.rootPa }));
  rig.mmio64(REG.RTADDR, root);
  rig.command(GCMD_SRTP);
  return { rig, ss, data };
}
