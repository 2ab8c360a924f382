import { FrameAllocator, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { machine, RAM_BASE, RAM_SIZE, readDesc, writeDesc } from '../test/fixtures.js';
import { DESC_TABLE } from './format.js';
import { IoPageTable } from './io-page-table.js';
import { LIMIT_AP_TABLE_RO } from './vmsa/descriptors.js';
import { vmsaAccessAllowed } from './vmsa/permissions.js';
import { vmsaFormat } from './vmsa/vmsa-format.js';
import { type WalkOptions, WalkState, type WalkTableCache, walk, walkInto } from './walk.js';

const RW = { read: true, write: true } as const;
const IOVA = 0x12_3456_7000;
const PA = 0x9_8765_4000;

function setup(oas = 48) {
  const m = machine();
  const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas });
  const table = new IoPageTable(format, m);
  table.map(BigInt(IOVA), BigInt(PA % 2 ** oas), 0x1000n, RW);
  const hw = m.bus.counter('walker');
  const options: WalkOptions = { bus: m.bus, counter: hw };
  /** The descriptor address read at each level of a walk of IOVA. */
  const steps: number[] = [];
  walk(format, table.rootPa, IOVA, { ...options, onStep: (_l, a) => steps.push(a) });
  return { m, format, table, hw, options, steps };
}

describe('walk: results and faults', () => {
  it('translates through four levels, reporting each step', () => {
    const { format, table, options, steps } = setup();
    const seen: [number, number][] = [];
    const r = walk(format, table.rootPa, IOVA + 0x123, {
      ...options,
      onStep: (level, a) => seen.push([level, a]),
    });
    expect(r.ok && [r.pa, r.level, r.pageShift, r.reads]).toEqual([PA + 0x123, 3, 12, 4]);
    expect(seen.map(([l]) => l)).toEqual([0, 1, 2, 3]);
    expect(seen[0]![1]).toBe(table.rootPa + format.index(IOVA, 0) * 8);
    expect(seen.map(([, a]) => a)).toEqual(steps);
    expect(r.ok && r.descriptorAddress).toBe(steps[3]);
    expect(r.ok && r.attrs).toMatchObject({ stage: 1, ap: 0b01, af: true, ng: true, xn: 0b11, memAttr: 1 });
  });

  it('translation fault: nothing mapped, at the level where the walk stopped', () => {
    const { format, table, options } = setup();
    const r = walk(format, table.rootPa, IOVA + 0x1000, options);
    expect(r).toEqual({ ok: false, fault: { kind: 'translation', level: 3 }, reads: 4 });
    const far = walk(format, table.rootPa, 0x7f00_0000_0000, options);
    expect(far).toEqual({ ok: false, fault: { kind: 'translation', level: 0 }, reads: 1 });
  });

  it('translation fault at the start level, no read, for an input at or above 2^IAS (SMMUv3 3.4)', () => {
    const m = machine();
    const format = vmsaFormat({ stage: 2, granule: 4096, ias: 40, oas: 48 });
    const t = new IoPageTable(format, m);
    const counter = m.bus.counter('w');
    const r = walk(format, t.rootPa, 2 ** 40, { bus: m.bus, counter });
    expect(r).toEqual({ ok: false, fault: { kind: 'translation', level: 1 }, reads: 0 });
    expect(counter.reads).toBe(0);
    expect(walk(format, t.rootPa, -4096, { bus: m.bus, counter }).ok).toBe(false);
  });

  it('translation fault for a reserved level-3 encoding (0b01)', () => {
    const { m, format, table, options, steps } = setup();
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo & ~2, hi);
    expect(walk(format, table.rootPa, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'translation', level: 3 },
      reads: 4,
    });
  });

  it('address-size fault: output, table or root address at or above 2^OAS', () => {
    const { m, format, table, options, steps } = setup(40);
    const [lo3, hi3] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo3, hi3 | (1 << 12)); // OA bit 44
    expect(walk(format, table.rootPa, IOVA, options)).toMatchObject({
      ok: false,
      fault: { kind: 'address-size', level: 3 },
    });
    writeDesc(m, steps[3]!, lo3, hi3);
    const [lo1, hi1] = readDesc(m, steps[1]!);
    writeDesc(m, steps[1]!, lo1, hi1 | (1 << 8)); // next-level table at bit 40
    expect(walk(format, table.rootPa, IOVA, options)).toMatchObject({
      ok: false,
      fault: { kind: 'address-size', level: 1 },
      reads: 2,
    });
    expect(walk(format, 2 ** 40, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'address-size', level: 0 },
      reads: 0,
    });
  });

  it('walk-abort: a table pointer to where there is no memory', () => {
    const { m, format, table, options, steps, hw } = setup();
    const [, hi0] = readDesc(m, steps[0]!);
    writeDesc(m, steps[0]!, 0x3, (hi0 & ~0xffff) | 0x10); // level-1 table at 0x10_0000_0000: no RAM there
    const r = walk(format, table.rootPa, IOVA, options);
    expect(r).toEqual({
      ok: false,
      fault: { kind: 'walk-abort', level: 1, address: 0x10_0000_0000 + format.index(IOVA, 1) * 8 },
      reads: 1,
    });
    expect(hw.aborts).toBe(1);
  });

  it('input and root bounds: a negative one faults with no read; a root at PA 0 is walked', () => {
    const { format, table, options } = setup();
    const negative = walk(format, table.rootPa, -4096, options);
    expect(negative).toEqual({ ok: false, fault: { kind: 'translation', level: 0 }, reads: 0 });
    // A fault with no descriptor address carries no address field at all.
    expect(!negative.ok && Object.keys(negative.fault)).toEqual(['kind', 'level']);
    expect(walk(format, -4096, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'address-size', level: 0 },
      reads: 0,
    });
    const low = machine(0, 16 * 2 ** 20);
    const atZero = new IoPageTable(format, low);
    expect(atZero.rootPa).toBe(0);
    atZero.map(0x5000n, 0x7000n, 0x1000n, RW);
    const r = walk(format, 0, 0x5010, { bus: low.bus, counter: low.bus.counter('w') });
    expect(r.ok && r.pa).toBe(0x7010);
  });

  it('address-size fault for a table or output address exactly 2^OAS', () => {
    const { m, format, table, options, steps } = setup(40);
    // Address bits [39:12] cleared and bit 40 set: the address is 2^40 exactly.
    const at2pow40 = ([lo, hi]: [number, number]) => [lo & 0xfff, (hi & ~0xffff) | (1 << 8)] as const;
    const leaf = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, ...at2pow40(leaf));
    expect(walk(format, table.rootPa, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'address-size', level: 3 },
      reads: 4,
    });
    writeDesc(m, steps[3]!, ...leaf);
    writeDesc(m, steps[2]!, ...at2pow40(readDesc(m, steps[2]!)));
    expect(walk(format, table.rootPa, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'address-size', level: 2 },
      reads: 3,
    });
  });

  it('a format that calls a leaf-level descriptor a table gets a translation fault there', () => {
    const { format, table, options } = setup();
    const tableAtLeaf = Object.assign(Object.create(format) as typeof format, {
      kind: (lo: number, hi: number, level: number) =>
        level === format.leafLevel ? DESC_TABLE : format.kind(lo, hi, level),
    });
    expect(walk(tableAtLeaf, table.rootPa, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'translation', level: 3 },
      reads: 4,
    });
  });

  it('access-flag fault, or with HA the flag is set and written back', () => {
    const { m, format, table, options, steps, hw } = setup();
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo & ~0x400, hi);
    expect(walk(format, table.rootPa, IOVA, options)).toEqual({
      ok: false,
      fault: { kind: 'access-flag', level: 3 },
      reads: 4,
    });
    const writes = hw.writes;
    const r = walk(format, table.rootPa, IOVA, { ...options, hardwareAccessFlag: true });
    expect(r.ok && r.attrs.af).toBe(true);
    expect(hw.writes).toBe(writes + 1);
    expect(readDesc(m, steps[3]!)).toEqual([lo, hi]);
    // Set now: no further write.
    walk(format, table.rootPa, IOVA, { ...options, hardwareAccessFlag: true });
    expect(hw.writes).toBe(writes + 1);
  });

  it('access-flag fault disabled (AFFD): AF = 0 is used as 1, with no write-back; HA takes precedence', () => {
    const { m, format, table, options, steps, hw } = setup();
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo & ~0x400, hi);
    const writes = hw.writes;
    const r = walk(format, table.rootPa, IOVA + 8, { ...options, accessFlagFaultDisable: true });
    expect(r.ok && [r.pa, r.level]).toEqual([PA + 8, 3]);
    expect(hw.writes).toBe(writes);
    expect(readDesc(m, steps[3]!)).toEqual([(lo & ~0x400) >>> 0, hi]);
    // With HA the flag is set in memory whatever AFFD says (SMMUv3 §5.4 AFFD: IGNORED when HA == 1).
    walk(format, table.rootPa, IOVA, { ...options, accessFlagFaultDisable: true, hardwareAccessFlag: true });
    expect(readDesc(m, steps[3]!)).toEqual([lo, hi]);
  });

  it('hierarchical permissions from table descriptors, unless disabled (CD.HAD)', () => {
    const { m, format, table, options, steps } = setup();
    const [lo, hi] = readDesc(m, steps[0]!);
    writeDesc(m, steps[0]!, lo, hi | (1 << 30)); // bit 62: APTable[1], read-only below
    const r = walk(format, table.rootPa, IOVA, options);
    expect(r.ok && r.attrs.tableLimits).toBe(LIMIT_AP_TABLE_RO);
    expect(r.ok && vmsaAccessAllowed(r.attrs, PERM_WRITE)).toBe(false);
    expect(r.ok && vmsaAccessAllowed(r.attrs, PERM_READ)).toBe(true);
    const flat = walk(format, table.rootPa, IOVA, { ...options, hierarchicalPermissions: false });
    expect(flat.ok && vmsaAccessAllowed(flat.attrs, PERM_WRITE)).toBe(true);
  });
});

/** A walk cache keyed by (shift, input region): enough to watch what the walker asks for and stores. */
class MapWalkCache implements WalkTableCache {
  readonly entries = new Map<string, { level: number; table: number; limits: number }>();
  readonly fills: [level: number, shift: number, table: number, limits: number][] = [];
  table = -1;
  limits = -1;
  constructor(private readonly shifts: readonly number[]) {}
  find(iova: number): number {
    for (const shift of this.shifts) {
      const e = this.entries.get(`${shift}:${Math.floor(iova / 2 ** shift)}`);
      if (e) {
        this.table = e.table;
        this.limits = e.limits;
        return e.level;
      }
    }
    return -1;
  }
  fill(level: number, shift: number, iova: number, table: number, limits: number): void {
    this.fills.push([level, shift, table, limits]);
    this.entries.set(`${shift}:${Math.floor(iova / 2 ** shift)}`, { level, table, limits });
  }
}

describe('walk: walk caches (tableCache)', () => {
  it('reports each table descriptor it follows with the range it covers, then starts at the deepest cached table', () => {
    const { m, format, table, options, steps } = setup();
    const [lo, hi] = readDesc(m, steps[1]!);
    writeDesc(m, steps[1]!, lo, hi | (1 << 30)); // APTable[1] at level 1: read-only below
    const cache = new MapWalkCache([21, 30, 39]);
    const first = walk(format, table.rootPa, IOVA, { ...options, tableCache: cache });
    expect(first.ok && first.reads).toBe(4);
    expect(cache.fills.map(([level, shift]) => [level, shift])).toEqual([
      [1, 39],
      [2, 30],
      [3, 21],
    ]);
    expect(cache.fills.map(([, , t]) => t)).toEqual(steps.slice(1).map((a) => a - (a % 4096)));
    expect(cache.fills.map(([, , , limits]) => limits)).toEqual([0, LIMIT_AP_TABLE_RO, LIMIT_AP_TABLE_RO]);
    cache.fills.length = 0;
    const seen: number[] = [];
    const again = walk(format, table.rootPa, IOVA + 0x10, {
      ...options,
      tableCache: cache,
      onStep: (level) => seen.push(level),
    });
    expect(again.ok && [again.pa, again.reads, again.attrs.tableLimits]).toEqual([
      PA + 0x10,
      1,
      LIMIT_AP_TABLE_RO,
    ]);
    expect(seen).toEqual([3]);
    expect(cache.fills).toEqual([]);
  });

  it('walks from the root on a miss, and from a shallower table when only that one is cached', () => {
    const { format, table, options, steps } = setup();
    const cache = new MapWalkCache([30]);
    cache.entries.set(`30:${Math.floor(IOVA / 2 ** 30)}`, {
      level: 2,
      table: steps[2]! - (steps[2]! % 4096),
      limits: 0,
    });
    const seen: number[] = [];
    const r = walk(format, table.rootPa, IOVA, {
      ...options,
      tableCache: cache,
      onStep: (l) => seen.push(l),
    });
    expect(r.ok && [r.pa, r.reads]).toEqual([PA, 2]);
    expect(seen).toEqual([2, 3]);
    const miss = new MapWalkCache([21]);
    expect(walk(format, table.rootPa, IOVA, { ...options, tableCache: miss }).reads).toBe(4);
  });

  it('a stale cached table is used as the hardware would use it, and limits do not count without hierarchy', () => {
    const { m, format, table, options } = setup();
    const other = new IoPageTable(format, m);
    other.map(BigInt(IOVA), 0x4000_0000n, 0x1000n, RW);
    const cache = new MapWalkCache([21, 30, 39]);
    walk(format, other.rootPa, IOVA, { ...options, tableCache: cache });
    for (const e of cache.entries.values()) e.limits = LIMIT_AP_TABLE_RO;
    const stale = walk(format, table.rootPa, IOVA, { ...options, tableCache: cache });
    expect(stale.ok && [stale.pa, stale.reads, stale.attrs.tableLimits]).toEqual([
      0x4000_0000,
      1,
      LIMIT_AP_TABLE_RO,
    ]);
    const flat = walk(format, table.rootPa, IOVA, {
      ...options,
      tableCache: cache,
      hierarchicalPermissions: false,
    });
    expect(flat.ok && flat.attrs.tableLimits).toBe(0);
  });
});

describe('walk: hardware dirty state (HD)', () => {
  it('updates a writable-clean leaf only for an access allowed to write it', () => {
    const m = machine();
    const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    const t = new IoPageTable(format, m, { dirtyTracking: true });
    t.map(0n, 0x4000_0000n, 0x1000n, { read: true, write: true, priv: true }); // AP[1] = 0: privileged only
    t.readAndClearDirty(0n, 0x1000n, () => {}); // now writable-clean
    const hw = m.bus.counter('hw');
    const options = { bus: m.bus, counter: hw, hardwareDirty: true };
    const user = walk(format, t.rootPa, 0, { ...options, access: PERM_WRITE });
    expect(user.ok && vmsaAccessAllowed(user.attrs, PERM_WRITE, true)).toBe(false);
    expect(hw.writes).toBe(0);
    const priv = walk(format, t.rootPa, 0, { ...options, access: PERM_WRITE | PERM_PRIV });
    expect(priv.ok && priv.attrs.ap).toBe(0b00); // AP[2] cleared: dirty
    expect(hw.writes).toBe(1);
    const dirty: bigint[] = [];
    t.readAndClearDirty(0n, 0x1000n, (i) => dirty.push(i));
    expect(dirty).toEqual([0n]);
  });

  it('a write to a leaf already dirty writes nothing back', () => {
    const m = machine();
    const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    const t = new IoPageTable(format, m, { dirtyTracking: true });
    t.map(0n, 0x4000_0000n, 0x1000n, RW); // mapped dirty: nothing cleared it
    const hw = m.bus.counter('hw');
    const r = walk(format, t.rootPa, 0, { bus: m.bus, counter: hw, hardwareDirty: true, access: PERM_WRITE });
    expect(r.ok && r.attrs.ap).toBe(0b01);
    expect(hw.writes).toBe(0);
  });

  it('stage 2: the write sets S2AP[1] in memory', () => {
    const m = machine();
    const format = vmsaFormat({ stage: 2, granule: 16384, ias: 42, oas: 48 });
    const t = new IoPageTable(format, m, { dirtyTracking: true });
    t.map(0x4000n, 0x8000n, 0x4000n, RW);
    t.readAndClearDirty(0n, 1n << 42n, () => {});
    const counter = m.bus.counter('hw');
    const r0 = walk(format, t.rootPa, 0x4000, { bus: m.bus, counter });
    expect(r0.ok && (r0.lo & 0x80) === 0).toBe(true);
    const r = walk(format, t.rootPa, 0x4010, {
      bus: m.bus,
      counter,
      access: PERM_WRITE,
      hardwareDirty: true,
    });
    expect(r.ok && [r.pa, r.attrs.ap]).toEqual([0x8010, 0b11]);
    expect(r.ok && readDesc(m, r.descriptorAddress)[0]! & 0x80).toBe(0x80);
  });
});

describe('walk: nested translation (stage 1 tables in IPA space, through stage 2)', () => {
  function nestedSetup() {
    const m = machine();
    // Stage 1 tables and stage 2 tables come from different parts of RAM.
    const s1Mem = new FrameAllocator([{ base: 0x8000_0000, size: 0x100_0000 }], (b, n) =>
      m.bus.discardRam(b, n),
    );
    const s2Mem = new FrameAllocator([{ base: 0x8100_0000, size: 0x100_0000 }], (b, n) =>
      m.bus.discardRam(b, n),
    );
    const s1f = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    const s2f = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });
    const s1 = new IoPageTable(s1f, { bus: m.bus, memory: s1Mem, counter: m.counter });
    // 4K pages only, so every stage 2 walk is four reads.
    const s2 = new IoPageTable(
      s2f,
      { bus: m.bus, memory: s2Mem, counter: m.counter },
      { pageSizes: 1n << 12n },
    );
    const ipa = 0x4000_1234_5000;
    const pa = 0xc000_0000;
    s1.map(BigInt(IOVA), BigInt(ipa), 0x1000n, RW);
    s2.map(BigInt(ipa), BigInt(pa), 0x1000n, RW);
    // Stage 1 table IPAs equal their PAs: stage 2 maps that RAM 1:1.
    s2.map(0x8000_0000n, 0x8000_0000n, 0x100_0000n, RW);
    const counter = m.bus.counter('nested');
    const s2walk = (address: number) => walk(s2f, s2.rootPa, address, { bus: m.bus, counter });
    const translateTableAddress = (address: number) => {
      const r = s2walk(address);
      return r.ok ? r.pa : r.fault;
    };
    return { m, s1f, s1, s2, counter, s2walk, translateTableAddress, pa };
  }

  it('reads 4 + 4×4 + 4 = 24 descriptors to translate one address (4-level S1 over 4-level S2)', () => {
    const { m, s1f, s1, counter, s2walk, translateTableAddress, pa } = nestedSetup();
    const before = counter.reads;
    const r1 = walk(s1f, s1.rootPa, IOVA + 0x42, { bus: m.bus, counter, translateTableAddress });
    expect(r1.ok && r1.reads).toBe(4);
    expect(counter.reads - before).toBe(20);
    const r2 = s2walk(r1.ok ? r1.pa : -1);
    expect(r2.ok && [r2.pa, r2.reads]).toEqual([pa + 0x42, 4]);
    expect(counter.reads - before).toBe(24);
  });

  it('a stage 2 fault on a stage 1 table fetch ends the walk and is reported inside', () => {
    const { m, s1f, s1, s2, counter, translateTableAddress } = nestedSetup();
    const steps: number[] = [];
    walk(s1f, s1.rootPa, IOVA, { bus: m.bus, counter, onStep: (_l, a) => steps.push(a) });
    const l2TablePage = Math.floor(steps[2]! / 4096) * 4096;
    expect(s2.unmap(BigInt(l2TablePage), 0x1000n)).toBe(0x1000n);
    const r = walk(s1f, s1.rootPa, IOVA, { bus: m.bus, counter, translateTableAddress });
    expect(r).toEqual({
      ok: false,
      fault: {
        kind: 'translation',
        level: 2,
        address: steps[2],
        tableWalk: { kind: 'translation', level: 3 },
      },
      reads: 2,
    });
  });
});

describe('walk: nested hardware updates need write access to the descriptor (SMMUv3 §3.13.5)', () => {
  function setupNested() {
    const { m, format, table, options, steps, hw } = setup();
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo & ~0x400, hi); // AF = 0 in the leaf
    // Descriptor addresses map 1:1; the leaf's address may be read but not written.
    const asked: [number, number, number][] = [];
    const translateTableAddress = (address: number, level: number, access: number) => {
      asked.push([address, level, access]);
      return address === steps[3] && access === PERM_WRITE
        ? ({ kind: 'translation', level: 3 } as const)
        : address;
    };
    return { m, format, table, options, steps, hw, lo, hi, asked, translateTableAddress };
  }

  it('asks for every descriptor read, then for the write-back of the AF update; a refusal ends the walk unmodified', () => {
    const { m, format, table, options, steps, hw, lo, hi, asked, translateTableAddress } = setupNested();
    const writes = hw.writes;
    const r = walk(format, table.rootPa, IOVA, {
      ...options,
      hardwareAccessFlag: true,
      translateTableAddress,
    });
    expect(asked).toEqual([
      [steps[0], 0, PERM_READ],
      [steps[1], 1, PERM_READ],
      [steps[2], 2, PERM_READ],
      [steps[3], 3, PERM_READ],
      [steps[3], 3, PERM_WRITE],
    ]);
    expect(r).toEqual({
      ok: false,
      fault: {
        kind: 'translation',
        level: 3,
        address: steps[3],
        tableWalk: { kind: 'translation', level: 3 },
      },
      reads: 4,
    });
    expect(hw.writes).toBe(writes);
    expect(readDesc(m, steps[3]!)).toEqual([(lo & ~0x400) >>> 0, hi]);
  });

  it('the write-back goes where stage 2 says, and a bus abort there is a walk-abort at that address', () => {
    const { m, format, table, options, steps, lo, hi } = setupNested();
    const scratch = RAM_BASE + RAM_SIZE - 8; // the leaf's write-access address: somewhere else
    const writeTo = (target: number) => (address: number, _level: number, access: number) =>
      address === steps[3] && access === PERM_WRITE ? target : address;
    const r = walk(format, table.rootPa, IOVA, {
      ...options,
      hardwareAccessFlag: true,
      translateTableAddress: writeTo(scratch),
    });
    expect(r.ok && [r.pa, r.descriptorAddress]).toEqual([PA, scratch]);
    expect(readDesc(m, scratch)[0]).toBe((lo | 0x400) >>> 0);
    expect(readDesc(m, steps[3]!)).toEqual([(lo & ~0x400) >>> 0, hi]);
    const noMemory = 0x10_0000_0000;
    expect(
      walk(format, table.rootPa, IOVA, {
        ...options,
        hardwareAccessFlag: true,
        translateTableAddress: writeTo(noMemory),
      }),
    ).toEqual({ ok: false, fault: { kind: 'walk-abort', level: 3, address: noMemory }, reads: 4 });
  });

  it('no write-back, no write request: AF already set, or AFFD', () => {
    const { format, table, options, steps, asked, translateTableAddress } = setupNested();
    const r = walk(format, table.rootPa, IOVA, {
      ...options,
      accessFlagFaultDisable: true,
      translateTableAddress,
    });
    expect(r.ok).toBe(true);
    expect(asked.map(([, , access]) => access)).toEqual([PERM_READ, PERM_READ, PERM_READ, PERM_READ]);
    expect(asked.map(([address]) => address)).toEqual(steps);
  });
});

describe('walk: 52-bit addresses with the 64K granule', () => {
  it('walks a 3-level table to a page at 2^52 − 64K and a 4 TB block', () => {
    const m = machine();
    const format = vmsaFormat({ stage: 1, granule: 65536, ias: 52, oas: 52 });
    const t = new IoPageTable(format, m);
    const top = 2 ** 52 - 65536;
    t.map(2n ** 51n, BigInt(top), 0x1_0000n, RW);
    t.map(2n ** 50n, 2n ** 51n, 2n ** 42n, RW);
    const counter = m.bus.counter('w');
    const page = walk(format, t.rootPa, 2 ** 51 + 0x1234, { bus: m.bus, counter });
    expect(page.ok && [page.pa, page.level, page.pageShift, page.reads]).toEqual([top + 0x1234, 3, 16, 3]);
    const block = walk(format, t.rootPa, 2 ** 50 + 2 ** 41 + 8, { bus: m.bus, counter });
    expect(block.ok && [block.pa, block.level, block.pageShift]).toEqual([2 ** 51 + 2 ** 41 + 8, 1, 42]);
    expect(t.iovaToPhys(2n ** 51n + 0xffffn)).toBe(BigInt(top) + 0xffffn);
  });
});

describe('walkInto: the same walk into a reused state', () => {
  it('fills the state with what walk() returns, leaf limits included, and says ok', () => {
    const { format, table, options } = setup();
    const state = new WalkState();
    expect(walkInto(format, table.rootPa, IOVA + 0x123, options, state)).toBe(true);
    const r = walk(format, table.rootPa, IOVA + 0x123, options);
    if (!r.ok) throw new Error('walk failed');
    const { pa, level, pageShift, lo, hi, descriptorAddress, reads } = state;
    expect({ pa, level, pageShift, lo, hi, descriptorAddress, reads }).toEqual({
      pa: r.pa,
      level: r.level,
      pageShift: r.pageShift,
      lo: r.lo,
      hi: r.hi,
      descriptorAddress: r.descriptorAddress,
      reads: r.reads,
    });
    expect(format.decodeLeaf(lo, hi, level, state.tableLimits)).toEqual(r.attrs);
  });

  it('a fault overwrites an earlier success; fault() gives the value walk() reports', () => {
    const { format, table, options } = setup();
    const state = new WalkState();
    walkInto(format, table.rootPa, IOVA, options, state);
    expect(walkInto(format, table.rootPa, IOVA + 2 ** 30, options, state)).toBe(false);
    expect(state.ok).toBe(false);
    expect(state.fault()).toEqual({ kind: 'translation', level: 1 });
    expect(state.reads).toBe(walk(format, table.rootPa, IOVA + 2 ** 30, options).reads);
    // A walk-abort keeps its address; a success after it clears nothing it does not set again.
    expect(walkInto(format, 2 ** 40, IOVA, options, state)).toBe(false);
    expect(state.fault()).toEqual({
      kind: 'walk-abort',
      level: 0,
      address: 2 ** 40 + format.index(IOVA, 0) * 8,
    });
    expect(walkInto(format, table.rootPa, IOVA, options, state)).toBe(true);
    expect(state.ok && state.pa).toBe(PA);
  });

  it('a table-address translation that refuses ends the walk with its fault inside', () => {
    const { format, table, options } = setup();
    const state = new WalkState();
    const refused = { kind: 'translation', level: 2 } as const;
    const ok = walkInto(
      format,
      table.rootPa,
      IOVA,
      { ...options, translateTableAddress: (a, level) => (level === 1 ? refused : a) },
      state,
    );
    expect(ok).toBe(false);
    expect(state.fault()).toEqual({
      kind: 'translation',
      level: 1,
      address: state.faultAddress,
      tableWalk: refused,
    });
    expect(state.reads).toBe(1);
  });
});
