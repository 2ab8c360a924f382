import {
  ALL_GRANTS,
  FrameAllocator,
  grantedTo,
  MemoryBus,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  stageGrants,
  Tracer,
} from '@iommukit/core';
import {
  IoPageTable,
  type MapProt,
  type PageTableFormat,
  VTD_SS_A,
  VTD_SS_D,
  VTD_SS_X,
  vtdSsFormat,
  X86_A,
  X86_EA,
  X86_US,
  x86Format,
} from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { FR } from './fault-reasons.js';
import { featuresFromOptions, type VtdOptions, VtdOptionsSchema } from './options.js';
import {
  permissionFault,
  SS_FOR_FS_ROOT,
  SS_FOR_FS_TABLE,
  SS_FOR_INPUT,
  VtdStageWalker,
} from './stage-walks.js';

const RAM = 0x1_0000_0000;
const HOLE = 0x8000_0000; // below the host address width, no RAM there: a read aborts
const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const R: MapProt = { read: true, write: false };
const W: MapProt = { read: false, write: true };
const RW: MapProt = { read: true, write: true };
const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

function bench(options: Partial<VtdOptions> = {}) {
  const features = featuresFromOptions(VtdOptionsSchema.parse({ hostAddressBits: 48, ...options }));
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 16 * 1024 * 1024);
  const memory = new FrameAllocator([{ base: RAM, size: 16 * 1024 * 1024 }], (b, n) => bus.discardRam(b, n));
  const tracer = new Tracer();
  const walker = new VtdStageWalker({
    instance: 'dmar0',
    bus,
    counter: bus.counter('vtd'),
    tracer,
    features,
  });
  const ctx = { bus, memory, counter: bus.counter('pgtable') };
  const setup = bus.counter('setup');
  const words = new Uint32Array(2);
  /** The address of the entry translating `iova` at `level` (the tables above it must be present). */
  const entryAt = (format: PageTableFormat, root: number, iova: number, level: number): number => {
    let table = root;
    for (let l = format.startLevel; ; l = format.nextLevel(l)) {
      const at = table + format.index(iova, l) * 8;
      if (l === level) return at;
      bus.readWords(at, words, 2, setup);
      table = format.tableAddress(words[0]! | 0, words[1]! | 0);
    }
  };
  const read = (at: number): [number, number] => {
    bus.readWords(at, words, 2, setup);
    return [words[0]!, words[1]!];
  };
  const write = (at: number, lo: number, hi: number) => {
    bus.writeWords(at, Uint32Array.of(lo, hi), 2, setup);
  };
  return {
    features,
    walker,
    tracer,
    entryAt,
    read,
    write,
    ss: (levels: 3 | 4 | 5 = 4, accessedDirty = false) => {
      const format = vtdSsFormat({ levels, oas: 48, accessedDirty });
      return { format, table: new IoPageTable(format, ctx) };
    },
    fs: (extendedAccessed = false, dirtyTracking = false) => {
      const format = x86Format({ levels: 4, oas: 48, extendedAccessed });
      return { format, table: new IoPageTable(format, ctx, { dirtyTracking }) };
    },
  };
}

describe('grants', () => {
  it('give a privileged access the supervisor half and any other the user half', () => {
    const grants = stageGrants(PERM_READ | PERM_WRITE, PERM_READ);
    expect(grantedTo(grants, PERM_WRITE | PERM_PRIV)).toBe(PERM_READ | PERM_WRITE);
    expect(grantedTo(grants, PERM_WRITE)).toBe(PERM_READ);
    expect(grantedTo(ALL_GRANTS, PERM_READ)).toBe(RWX);
  });

  it('permission faults in the §3.6.2 order: U/S, then execute, then write', () => {
    const supervisorOnly = stageGrants(RWX, 0);
    expect(permissionFault(supervisorOnly, PERM_READ)).toBe(FR.SM_USER_SUPERVISOR);
    expect(permissionFault(supervisorOnly, PERM_EXEC | PERM_WRITE | PERM_PRIV)).toBe(0);
    const noExec = stageGrants(PERM_READ, PERM_READ);
    expect(permissionFault(noExec, PERM_EXEC)).toBe(FR.SM_EXECUTE_DENIED);
    expect(permissionFault(noExec, PERM_READ)).toBe(0);
    expect(permissionFault(noExec, PERM_WRITE | PERM_EXEC)).toBe(FR.SM_WRITE_DENIED);
    // An execute request is a read that fetches: with the write bit it is no execute request.
    expect(
      permissionFault(stageGrants(PERM_READ | PERM_WRITE, PERM_READ | PERM_WRITE), PERM_WRITE | PERM_EXEC),
    ).toBe(0);
    expect(permissionFault(stageGrants(RWX, RWX), PERM_EXEC)).toBe(0);
    // Only a second-stage leaf can be write-only: a read or a fetch through it needs read permission.
    const writeOnly = stageGrants(PERM_WRITE, PERM_WRITE);
    expect(permissionFault(writeOnly, PERM_READ)).toBe(FR.SM_READ_DENIED);
    expect(permissionFault(writeOnly, PERM_EXEC)).toBe(FR.SM_READ_DENIED);
    expect(permissionFault(writeOnly, PERM_WRITE)).toBe(0);
  });
});

describe('second stage', () => {
  it('translates, counting the walk, with the leaf’s page, level and grants', () => {
    const b = bench();
    const { format, table } = b.ss(4);
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    table.map(BigInt(IOVA + 0x20_0000), BigInt(PA), 0x20_0000n, R);
    table.map(BigInt(IOVA + 0x40_0000), BigInt(PA), 0x1000n, W);
    const walk = (input: number, access = PERM_READ, legacy = false) =>
      b.walker.secondStage(format, table.rootPa, input, access, legacy, SS_FOR_INPUT);
    expect(walk(IOVA + 0x123, PERM_WRITE)).toBe(0);
    expect(b.walker.walks).toBe(1);
    expect({ ...b.walker.second }).toEqual({
      pa: PA + 0x123,
      pageShift: 12,
      level: 1,
      grants: ALL_GRANTS,
      global: false,
    });
    // Execute follows read since spec 4.0: a read-only leaf gives R and X, a write-only one W alone.
    expect(walk(IOVA + 0x20_1000)).toBe(0);
    expect(b.walker.second).toMatchObject({ pa: PA + 0x1000, pageShift: 21, level: 2 });
    expect(b.walker.second.grants).toBe(stageGrants(PERM_READ | PERM_EXEC, PERM_READ | PERM_EXEC));
    expect(walk(IOVA + 0x40_0000, PERM_WRITE)).toBe(0);
    expect(b.walker.second.grants).toBe(stageGrants(PERM_WRITE, PERM_WRITE));
    expect(b.walker.walks).toBe(3);
  });

  it('permission faults of a present leaf: legacy 0x5/0x6, scalable 0x85/0x86, nested fetches 0x77/0x76', () => {
    const b = bench();
    const { format, table } = b.ss(4);
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, R);
    table.map(BigInt(IOVA + 0x1000), BigInt(PA), 0x1000n, W);
    const walk = (input: number, access: number, legacy: boolean, purpose = SS_FOR_INPUT) =>
      b.walker.secondStage(format, table.rootPa, input, access, legacy, purpose);
    expect(walk(IOVA, PERM_WRITE, true)).toBe(FR.WRITE_DENIED);
    expect(walk(IOVA + 0x1000, PERM_READ, true)).toBe(FR.READ_DENIED);
    expect(walk(IOVA, PERM_WRITE, false)).toBe(FR.SM_WRITE_DENIED);
    expect(walk(IOVA + 0x1000, PERM_READ, false)).toBe(FR.SM_READ_DENIED);
    expect(b.walker.secondNotPresent).toBe(false);
    expect(walk(IOVA, PERM_WRITE, false, SS_FOR_FS_TABLE)).toBe(FR.SM_NESTED_FS_WRITE);
    expect(walk(IOVA + 0x1000, PERM_READ, false, SS_FOR_FS_TABLE)).toBe(FR.SM_NESTED_FS_READ);
    expect(walk(IOVA + 0x1000, PERM_READ, false, SS_FOR_FS_ROOT)).toBe(FR.SM_NESTED_FS_ROOT_READ);
  });

  it('not present: the access’s permission fault in legacy mode, 0x79 in scalable mode, 0x75–0x77 nested', () => {
    const b = bench();
    const { format, table } = b.ss(4);
    const walk = (access: number, legacy: boolean, purpose = SS_FOR_INPUT) =>
      b.walker.secondStage(format, table.rootPa, IOVA, access, legacy, purpose);
    expect(walk(PERM_READ, true)).toBe(FR.READ_DENIED);
    expect(b.walker.secondNotPresent).toBe(true);
    expect(walk(PERM_WRITE, true)).toBe(FR.WRITE_DENIED);
    expect(walk(PERM_READ, false)).toBe(FR.SM_SS_PERMISSION);
    expect(walk(PERM_READ, false, SS_FOR_FS_ROOT)).toBe(FR.SM_NESTED_FS_ROOT_READ);
    expect(walk(PERM_READ, false, SS_FOR_FS_TABLE)).toBe(FR.SM_NESTED_FS_READ);
    expect(walk(PERM_WRITE, false, SS_FOR_FS_ROOT)).toBe(FR.SM_NESTED_FS_WRITE);
    expect(b.walker.secondNotPresent).toBe(true);
  });

  it('an input beyond the table’s width or MGAW: 0x4 legacy, 0x83 scalable, 0x74 for a nested fetch', () => {
    const b = bench({ mgawBits: 40 });
    const { format, table } = b.ss(4);
    const walk = (input: number, legacy: boolean, purpose = SS_FOR_INPUT) =>
      b.walker.secondStage(format, table.rootPa, input, PERM_READ, legacy, purpose);
    // A not-present walk first: the refusal before any walk is no not-present entry.
    expect(walk(IOVA, false)).toBe(FR.SM_SS_PERMISSION);
    expect(walk(2 ** 40, true)).toBe(FR.ADDRESS_BEYOND_MGAW);
    expect(b.walker.secondNotPresent).toBe(false);
    expect(walk(2 ** 40, false)).toBe(FR.SM_ADDRESS_BEYOND_MAX);
    expect(walk(2 ** 40, false, SS_FOR_FS_TABLE)).toBe(FR.SM_NESTED_FS_BEYOND_MGAW);
    // Just below MGAW is walked.
    expect(walk(2 ** 40 - 4096, true)).toBe(FR.READ_DENIED);
    const narrow = b.ss(3);
    expect(b.walker.secondStage(narrow.format, narrow.table.rootPa, 2 ** 39, PERM_READ, true, 0)).toBe(
      FR.ADDRESS_BEYOND_MGAW,
    );
  });

  it('a table read that aborts: 0x7 legacy; scalable 0x7B at SSPTPTR, 0x78 below', () => {
    const b = bench();
    const { format, table } = b.ss(4);
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    const walk = (root: number, legacy: boolean) =>
      b.walker.secondStage(format, root, IOVA, PERM_READ, legacy, SS_FOR_INPUT);
    expect(walk(HOLE, true)).toBe(FR.PAGING_ENTRY_ACCESS);
    expect(walk(HOLE, false)).toBe(FR.SM_SSPTPTR_INVALID);
    expect(b.walker.secondNotPresent).toBe(false);
    // The level-3 entry points at the hole.
    b.write(b.entryAt(format, table.rootPa, IOVA, 3), HOLE | 3, 0);
    expect(walk(table.rootPa, true)).toBe(FR.PAGING_ENTRY_ACCESS);
    expect(walk(table.rootPa, false)).toBe(FR.SM_SS_ACCESS);
  });

  it('a reserved bit: 0xC legacy, 0x7A scalable; a root beyond the host address width likewise 0xC, 0x84', () => {
    const b = bench();
    const { format, table } = b.ss(4);
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    const at = b.entryAt(format, table.rootPa, IOVA, 1);
    const [lo, hi] = b.read(at);
    b.write(at, lo | VTD_SS_X, hi);
    const walk = (root: number, legacy: boolean) =>
      b.walker.secondStage(format, root, IOVA, PERM_READ, legacy, SS_FOR_INPUT);
    expect(walk(table.rootPa, true)).toBe(FR.PAGING_ENTRY_RESERVED);
    expect(walk(table.rootPa, false)).toBe(FR.SM_SS_RESERVED);
    expect(b.walker.secondNotPresent).toBe(false);
    expect(walk(2 ** 48, true)).toBe(FR.PAGING_ENTRY_RESERVED);
    expect(walk(2 ** 48, false)).toBe(FR.SM_SS_OUTPUT_BEYOND_MAX);
  });

  it('sets A on the entries it uses and D on a written leaf only with SSADE', () => {
    const b = bench();
    for (const ad of [false, true]) {
      const { format, table } = b.ss(4, ad);
      table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
      const leaf = b.entryAt(format, table.rootPa, IOVA, 1);
      expect(b.walker.secondStage(format, table.rootPa, IOVA, PERM_READ, false, SS_FOR_INPUT)).toBe(0);
      expect(b.read(leaf)[0] & (VTD_SS_A | VTD_SS_D)).toBe(ad ? VTD_SS_A : 0);
      expect(b.read(table.rootPa + format.index(IOVA, 4) * 8)[0] & VTD_SS_A).toBe(ad ? VTD_SS_A : 0);
      expect(b.walker.secondStage(format, table.rootPa, IOVA, PERM_WRITE, false, SS_FOR_INPUT)).toBe(0);
      expect(b.read(leaf)[0] & (VTD_SS_A | VTD_SS_D)).toBe(ad ? VTD_SS_A | VTD_SS_D : 0);
    }
  });
});

describe('first stage', () => {
  it('translates user and supervisor pages with their grants, and G', () => {
    const b = bench();
    const { format, table } = b.fs();
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    table.map(BigInt(IOVA + 0x1000), BigInt(PA + 0x1000), 0x1000n, {
      read: true,
      write: false,
      priv: true,
      exec: true,
    });
    const walk = (input: number, access: number) =>
      b.walker.firstStage(format, table.rootPa, input, access, undefined, undefined);
    expect(walk(IOVA + 0x10, PERM_WRITE)).toBe(0);
    expect({ ...b.walker.first }).toEqual({
      pa: PA + 0x10,
      pageShift: 12,
      level: 1,
      grants: stageGrants(PERM_READ | PERM_WRITE, PERM_READ | PERM_WRITE),
      global: false,
    });
    expect(walk(IOVA + 0x1000, PERM_READ | PERM_PRIV)).toBe(0);
    expect(b.walker.first.grants).toBe(stageGrants(PERM_READ | PERM_EXEC, 0));
    expect(walk(IOVA + 0x1000, PERM_READ)).toBe(FR.SM_USER_SUPERVISOR);
    expect(walk(IOVA + 0x1000, PERM_WRITE | PERM_PRIV)).toBe(FR.SM_WRITE_DENIED);
    expect(walk(IOVA, PERM_EXEC)).toBe(FR.SM_EXECUTE_DENIED);
    expect(b.walker.walks).toBe(5);
    const leaf = b.entryAt(format, table.rootPa, IOVA, 1);
    const [lo, hi] = b.read(leaf);
    b.write(leaf, lo | (1 << 8), hi);
    expect(walk(IOVA, PERM_READ)).toBe(0);
    expect(b.walker.first.global).toBe(true);
  });

  it('faults: non-canonical 0x80, not present 0x71, root read 0x73, table read 0x70, reserved 0x72', () => {
    const b = bench();
    const { format, table } = b.fs();
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    const walk = (root: number, input = IOVA) =>
      b.walker.firstStage(format, root, input, PERM_READ, undefined, undefined);
    expect(walk(table.rootPa, 2 ** 47)).toBe(FR.SM_NON_CANONICAL);
    expect(walk(table.rootPa, 2 ** 47 - 4096)).toBe(FR.SM_FS_NOT_PRESENT);
    expect(walk(HOLE)).toBe(FR.SM_FS_ROOT_ACCESS);
    expect(walk(2 ** 48)).toBe(FR.SM_FS_RESERVED);
    const pdpte = b.entryAt(format, table.rootPa, IOVA, 3);
    const saved = b.read(pdpte);
    b.write(pdpte, HOLE | 0x27, 0);
    expect(walk(table.rootPa)).toBe(FR.SM_FS_ACCESS);
    // Address bit 48, at the host address width: reserved.
    b.write(pdpte, saved[0], saved[1] | (1 << 16));
    expect(walk(table.rootPa)).toBe(FR.SM_FS_RESERVED);
  });

  it('sets A (and EA with EAFE) in every entry it uses, and D on a write', () => {
    const b = bench();
    const { format, table } = b.fs(true, true);
    table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    const leaf = b.entryAt(format, table.rootPa, IOVA, 1);
    const pml4e = b.entryAt(format, table.rootPa, IOVA, 4);
    const [lo, hi] = b.read(leaf);
    b.write(leaf, lo & ~X86_A, hi);
    expect(b.walker.firstStage(format, table.rootPa, IOVA, PERM_READ, undefined, undefined)).toBe(0);
    expect(b.read(leaf)[0] & (X86_A | X86_EA | 0x40)).toBe(X86_A | X86_EA);
    expect(b.read(pml4e)[0] & (X86_A | X86_EA)).toBe(X86_A | X86_EA);
    expect(b.walker.firstStage(format, table.rootPa, IOVA, PERM_WRITE, undefined, undefined)).toBe(0);
    expect(b.read(leaf)[0] & 0x40).toBe(0x40);
    expect(b.read(leaf)[0] & X86_US).toBe(X86_US);
  });

  describe('nested: the tables are GPAs the second stage translates', () => {
    function nested() {
      const b = bench();
      const fs = b.fs();
      fs.table.map(BigInt(IOVA), BigInt(0x2_0000_0000), 0x1000n, RW);
      const ss = b.ss(4);
      return { b, fs, ss };
    }
    const through = (ss: { format: ReturnType<typeof vtdSsFormat>; table: IoPageTable }) => ({
      format: ss.format,
      root: ss.table.rootPa,
    });

    it('gives the first-stage output as a GPA', () => {
      const { b, fs, ss } = nested();
      ss.table.map(BigInt(RAM), BigInt(RAM), 0x100_0000n, RW);
      expect(
        b.walker.firstStage(fs.format, fs.table.rootPa, IOVA + 8, PERM_READ, undefined, through(ss)),
      ).toBe(0);
      expect(b.walker.first.pa).toBe(0x2_0000_0008);
      // Every table fetch was a second-stage walk.
      expect(b.walker.walks).toBe(5);
    });

    it('the second stage refusing the root fetch is 0x75, a lower table’s 0x76, beyond its width 0x74', () => {
      const { b, fs, ss } = nested();
      const walk = () =>
        b.walker.firstStage(fs.format, fs.table.rootPa, IOVA, PERM_READ, undefined, through(ss));
      expect(walk()).toBe(FR.SM_NESTED_FS_ROOT_READ);
      ss.table.map(BigInt(fs.table.rootPa), BigInt(fs.table.rootPa), 0x1000n, RW);
      expect(walk()).toBe(FR.SM_NESTED_FS_READ);
      const narrow = b.ss(3);
      const beyond = b.walker.firstStage(fs.format, 2 ** 40, IOVA, PERM_READ, undefined, through(narrow));
      expect(beyond).toBe(FR.SM_NESTED_FS_BEYOND_MGAW);
      // A later walk without nesting reports its own fault.
      expect(b.walker.firstStage(fs.format, HOLE, IOVA, PERM_READ, undefined, undefined)).toBe(
        FR.SM_FS_ROOT_ACCESS,
      );
    });
  });
});

describe('tracing', () => {
  it('records every entry a walk reads, by stage and level', () => {
    const b = bench();
    const fs = b.fs();
    fs.table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    const ss = b.ss(4);
    ss.table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    b.tracer.startRecording();
    b.walker.firstStage(fs.format, fs.table.rootPa, IOVA, PERM_READ, undefined, undefined);
    b.walker.secondStage(ss.format, ss.table.rootPa, IOVA, PERM_READ, false, SS_FOR_INPUT);
    const records = b.tracer.stopRecording();
    expect(records.map((r) => [r.layer, r.source, r.name, r.args.stage, r.args.level])).toEqual([
      ['hw', 'dmar0', 'walk.step', 'FS', 4],
      ['hw', 'dmar0', 'walk.step', 'FS', 3],
      ['hw', 'dmar0', 'walk.step', 'FS', 2],
      ['hw', 'dmar0', 'walk.step', 'FS', 1],
      ['hw', 'dmar0', 'walk.step', 'SS', 4],
      ['hw', 'dmar0', 'walk.step', 'SS', 3],
      ['hw', 'dmar0', 'walk.step', 'SS', 2],
      ['hw', 'dmar0', 'walk.step', 'SS', 1],
    ]);
    expect(records[0]!.args.addr).toBe(fs.table.rootPa + fs.format.index(IOVA, 4) * 8);
    // Off again: a walk records nothing.
    b.walker.secondStage(ss.format, ss.table.rootPa, IOVA, PERM_READ, false, SS_FOR_INPUT);
    expect(b.tracer.records).toEqual([]);
  });
});
