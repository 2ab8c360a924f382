/**
 * Property: whatever a guest programs into its nested vSMMUv3 — STEs through its driver or raw, CDs, page
 * table entries and any other word of guest RAM, register writes, raw commands — a DMA of its assigned
 * device that succeeds lands in that VM's host pages and nowhere else, and nothing fails except with a
 * coded IommufdError (the guest driver may give up: ETIMEDOUT, EIO, …; the process never hangs).
 */
import { IommufdError, type Prot, type System } from '@iommukit/core';
import {
  CMD_OPCODE,
  decodeCd,
  decodeSte,
  encodeCfgiCdAll,
  encodeCfgiSte,
  encodeSte,
  REG,
  type Smmuv3Driver,
} from '@iommukit/smmuv3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GUEST_RAM_BASE } from '../src/guest-memory.js';
import { VIOMMU_WINDOWS, Vm } from '../src/vm.js';
import { HOST_RAM, smmuHost } from './host.js';

const MiB = 2 ** 20;
const GUEST_RAM = 8 * MiB;
const RAM_END = GUEST_RAM_BASE + GUEST_RAM;
const VSID = 0x08; // nic0 is the guest's device 00:01.0
const PROTS: readonly Prot[] = [
  { read: true, write: false },
  { read: false, write: true },
  { read: true, write: true },
];

/** Addresses a hostile guest would aim at: its RAM, the edges of it, the host's RAM, MMIO, far away. */
const address = fc.oneof(
  {
    arbitrary: fc.integer({ min: 0, max: GUEST_RAM / 4096 - 1 }).map((p) => GUEST_RAM_BASE + p * 4096),
    weight: 4,
  },
  {
    arbitrary: fc.constantFrom(
      0,
      GUEST_RAM_BASE - 4096,
      RAM_END,
      RAM_END + 0x20_0000,
      HOST_RAM,
      HOST_RAM + 0x10_0000,
      0x0900_0000,
      VIOMMU_WINDOWS.nested,
      2 ** 40,
      2 ** 48 - 4096,
    ),
    weight: 2,
  },
  { arbitrary: fc.integer({ min: 0, max: 2 ** 40 / 4096 }).map((p) => p * 4096), weight: 1 },
);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
/** A descriptor-like 64-bit value: an address with random attribute bits, or anything. */
const descriptor = fc.oneof(
  fc
    .tuple(address, fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0xfff }))
    .map(([a, low, high]) => BigInt(a) | BigInt(low) | (BigInt(high) << 52n)),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

type Action =
  | { readonly kind: 'map'; readonly pages: number; readonly prot: number }
  | { readonly kind: 'unmap'; readonly pick: number }
  | { readonly kind: 'ste'; readonly raw: boolean; readonly restore: boolean; readonly words: Uint32Array }
  | {
      readonly kind: 'cd';
      readonly restore: boolean;
      readonly index: number;
      readonly words: readonly number[];
    }
  | {
      readonly kind: 'poke';
      readonly target: 'ste' | 'cd' | 'ttb' | 'ram';
      readonly offset: number;
      readonly value: bigint;
    }
  | { readonly kind: 'mmio'; readonly offset: number; readonly value: number }
  | { readonly kind: 'command'; readonly words: readonly number[] }
  | {
      readonly kind: 'dma';
      readonly write: boolean;
      readonly pick: number;
      readonly at: number;
      readonly length: number;
      readonly pasid: number | undefined;
    }
  | { readonly kind: 'service' };

const steWords = fc
  .record({
    v: fc.boolean(),
    config: fc.integer({ min: 0, max: 7 }),
    s1Fmt: fc.integer({ min: 0, max: 3 }),
    s1ContextPtr: address,
    s1CdMax: fc.integer({ min: 0, max: 20 }),
    s1Dss: fc.integer({ min: 0, max: 3 }),
    eats: fc.integer({ min: 0, max: 3 }),
    strw: fc.integer({ min: 0, max: 3 }),
    s1Stalld: fc.boolean(),
    s2Vmid: fc.integer({ min: 0, max: 0xffff }),
    s2Ttb: address,
  })
  .map((fields) => encodeSte(fields));

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      pages: fc.integer({ min: 1, max: 4 }),
      prot: fc.nat(2),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('unmap' as const), pick: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('ste' as const),
      raw: fc.boolean(),
      restore: fc.boolean(),
      words: steWords,
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('cd' as const),
      restore: fc.boolean(),
      index: fc.nat(3),
      words: fc.array(u32, { minLength: 16, maxLength: 16 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('poke' as const),
      target: fc.constantFrom('ste' as const, 'cd' as const, 'ttb' as const, 'ram' as const),
      offset: fc.nat(GUEST_RAM / 8 - 1).map((n) => n * 8),
      value: descriptor,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('mmio' as const),
      offset: fc.constantFrom(...Object.values(REG).flatMap((r) => [r, r + 4])),
      value: fc.oneof(u32, address),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      words: fc
        .tuple(fc.constantFrom(...Object.values(CMD_OPCODE), 0, 0xff), u32, u32, u32, u32)
        .map(([op, w0, w1, w2, w3]) => [((w0 & ~0xff) | op) >>> 0, w1, w2, w3]),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('dma' as const),
      write: fc.boolean(),
      pick: fc.nat(),
      at: fc.oneof({ arbitrary: fc.constant(-1), weight: 4 }, { arbitrary: address, weight: 1 }),
      length: fc.integer({ min: 1, max: 3 * 4096 }),
      pasid: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 5 },
        { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
      ),
    }),
    weight: 12,
  },
  { arbitrary: fc.constant({ kind: 'service' as const }), weight: 1 },
);

interface Run {
  readonly system: System;
  readonly vm: Vm;
  readonly smmu: Smmuv3Driver;
  readonly mappings: { iova: bigint; size: bigint }[];
  /** The guest's STE and CD as its driver first wrote them, which `restore` actions write back. */
  readonly pristine: { readonly ste: Uint32Array; readonly cdAt: number; readonly cd: Uint8Array };
  /** DMAs that went through (so the property is not vacuously true). */
  dmas: number;
}

async function nestedVm(): Promise<Run> {
  const { system, host } = await smmuHost(['nic0']);
  const vm = new Vm(host, { name: 'vm0', memory: GUEST_RAM, devices: ['nic0'], viommus: ['nested'] });
  vm.powerOn();
  const smmu = vm.guest.driver as unknown as Smmuv3Driver;
  // One mapping to start from: the driver has written the STE, the CD and the page tables by then.
  const size = 4n * 4096n;
  const mappings = [
    { iova: vm.guest.dma('nic0').map(vm.guest.allocBuffer(4 * 4096), size, PROTS[2]!), size },
  ];
  const ste = smmu.streamTable.readSte(VSID);
  const cdAt = decodeSte(ste).s1ContextPtr;
  const pristine = { ste, cdAt, cd: vm.guest.read(BigInt(cdAt), 64) };
  return { system, vm, smmu, mappings, pristine, dmas: 0 };
}

/** A guest RAM address for an 8-byte write `offset` bytes into `target`, or into RAM when it is elsewhere. */
function pokeAddress(run: Run, target: 'ste' | 'cd' | 'ttb' | 'ram', offset: number): number {
  const inRam = (a: number | undefined, span: number) =>
    a !== undefined && a >= GUEST_RAM_BASE && a + span <= RAM_END ? a : undefined;
  const ste = inRam(run.smmu.streamTable.steAddress(VSID), 64);
  const cd =
    ste === undefined ? undefined : inRam(decodeSte(run.vm.guest.read(BigInt(ste), 64)).s1ContextPtr, 64);
  const ttb =
    cd === undefined ? undefined : inRam(decodeCd(run.vm.guest.read(BigInt(cd), 64)).ttb0 & ~0xfff, 4096);
  const base = { ste, cd, ttb, ram: GUEST_RAM_BASE }[target];
  const span = { ste: 64, cd: 64, ttb: 4096, ram: GUEST_RAM }[target];
  return base === undefined ? GUEST_RAM_BASE + offset : base + (offset % span);
}

function perform(run: Run, a: Action): void {
  const { vm, smmu } = run;
  const dma = vm.guest.dma('nic0');
  switch (a.kind) {
    case 'map': {
      const size = BigInt(a.pages * 4096);
      const at = dma.map(vm.guest.allocBuffer(a.pages * 4096), size, PROTS[a.prot]!);
      run.mappings.push({ iova: at, size });
      return;
    }
    case 'unmap': {
      if (run.mappings.length === 0) return;
      const [m] = run.mappings.splice(a.pick % run.mappings.length, 1);
      dma.unmap(m!.iova);
      return;
    }
    case 'ste': {
      const words = a.restore ? run.pristine.ste : a.words;
      if (!a.raw) {
        smmu.streamTable.writeSte(VSID, words);
        return;
      }
      const at = smmu.streamTable.steAddress(VSID);
      if (at !== undefined) vm.guest.write(BigInt(at), new Uint8Array(words.buffer, words.byteOffset, 64));
      smmu.cmdq.submit([encodeCfgiSte({ streamId: VSID, leaf: true })]);
      return;
    }
    case 'cd': {
      if (a.restore) {
        vm.guest.write(BigInt(run.pristine.cdAt), run.pristine.cd);
      } else {
        const at = decodeSte(smmu.streamTable.readSte(VSID)).s1ContextPtr + a.index * 64;
        if (at >= GUEST_RAM_BASE && at + 64 <= RAM_END)
          vm.guest.write(BigInt(at), new Uint8Array(Uint32Array.from(a.words).buffer));
      }
      smmu.cmdq.submit([encodeCfgiCdAll({ streamId: VSID })]);
      return;
    }
    case 'poke': {
      const at = pokeAddress(run, a.target, a.offset);
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigUint64(0, a.value, true);
      vm.guest.write(BigInt(at), bytes);
      return;
    }
    case 'mmio': {
      vm.memory.bus.write(
        VIOMMU_WINDOWS.nested + a.offset,
        4,
        a.value >>> 0,
        vm.memory.bus.counter('vm0.rogue'),
      );
      return;
    }
    case 'command':
      smmu.cmdq.submit([Uint32Array.from(a.words)]);
      return;
    case 'dma': {
      const device = run.system.device('nic0');
      const mapping = run.mappings.length ? run.mappings[a.pick % run.mappings.length] : undefined;
      // Mostly inside a mapping the guest made (what its driver handed the device), else anywhere.
      const offset = mapping ? a.pick % Number(mapping.size) : 0;
      const inside = a.at < 0 && mapping !== undefined;
      const at = inside ? mapping.iova + BigInt(offset) : BigInt(Math.max(a.at, 0));
      const length = inside ? Math.min(a.length, Number(mapping.size) - offset) : a.length;
      const options = a.pasid === undefined ? { hpas: true } : { pasid: a.pasid, hpas: true };
      const result = a.write
        ? device.dmaWrite(at, new Uint8Array(length).fill(0xa5), options)
        : device.dmaRead(at, length, options);
      if (!result.ok) return;
      run.dmas++;
      // The invariant: every page the DMA touched is one of this VM's host pages.
      const low = BigInt(vm.memory.hostBase);
      const high = low + BigInt(GUEST_RAM);
      for (const page of result.hpas) {
        if (page < low || page >= high) {
          throw new Error(
            `DMA at IOVA 0x${at.toString(16)} reached HPA 0x${page.toString(16)}, outside the VM's RAM`,
          );
        }
      }
      return;
    }
    case 'service':
      vm.serviceInterrupts();
      return;
  }
}

describe('a hostile guest against its nested vSMMUv3', () => {
  it('every successful DMA lands in the VM’s host pages; every failure is a coded IommufdError', async () => {
    let dmas = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 20, maxLength: 80, size: 'max' }), async (actions) => {
        const run = await nestedVm();
        try {
          for (const a of actions) {
            try {
              perform(run, a);
            } catch (error) {
              if (!(error instanceof IommufdError)) throw error;
            }
          }
          // Interrupts the actions left pending run too (the guest's handlers must not fail uncoded).
          try {
            run.vm.serviceInterrupts();
          } catch (error) {
            if (!(error instanceof IommufdError)) throw error;
          }
          // No stall left behind: nothing the guest programs may hold a host transaction nobody resumes.
          expect(run.system.iommu('smmu0').hardware.stats().stalled).toBe(0);
        } finally {
          dmas += run.dmas;
          await run.system.dispose();
        }
      }),
      { numRuns: 200 },
    );
    expect(dmas).toBeGreaterThan(200);
  }, 60_000);

  it('a CD with S = 1 behind its no-stall vSMMU is C_BAD_CD, not a stall the host holds forever', async () => {
    // Found by the property: V, AA64, S = 1 (stall on faults), TTB0 = 0, under an STE with S1STALLD = 0.
    const run = await nestedVm();
    perform(run, {
      kind: 'cd',
      restore: false,
      index: 0,
      words: [0xddb7_c000, 0x1fff_fe00, ...new Array(14).fill(0)],
    });
    const device = run.system.device('nic0');
    expect(device.dmaRead(run.mappings[0]!.iova, 1)).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { vendorCode: 'C_BAD_CD' },
    });
    expect(() => run.vm.serviceInterrupts()).not.toThrow();
    expect(run.system.iommu('smmu0').hardware.stats().stalled).toBe(0);
    await run.system.dispose();
  });
});
