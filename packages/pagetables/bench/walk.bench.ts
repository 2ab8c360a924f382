/**
 * What a table walk and a map cost. The walk case is an uncached VMSAv8-64 walk (4K granule, 48-bit input:
 * four levels) through the memory bus with an AccessCounter, into a reused WalkState; its baseline is the
 * same four lookups with the same indices over plain Uint32Arrays (one per table, copied from the bus), so
 * the ratio is the price of the bus and the format abstraction (and, for `walk()`, of a fresh result). The map cases map 1 GiB as 4 KiB pages (262144
 * leaves in 512 tables) and as 2 MiB blocks (512 leaves), each on a fresh table, against a loop writing the
 * same 262144 encoded leaves into a typed array.
 */
import { defineBenchSuite } from '@iommukit/core';
import { amdV1Format } from '../src/amd/v1-format.js';
import type { PageTableFormat } from '../src/format.js';
import { IoPageTable } from '../src/io-page-table.js';
import { vmsaFormat } from '../src/vmsa/vmsa-format.js';
import { vtdSsFormat } from '../src/vtd/ss-format.js';
import { WalkState, walk, walkInto } from '../src/walk.js';
import { x86Format } from '../src/x86/x86-format.js';
import { machine, RAM_BASE } from '../test/fixtures.js';

const WALKS = 1024;
const MAPPINGS = 64;
const RW = { read: true, write: true } as const;
const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
/** The other 4-level formats, walked over the same mappings. */
const x86 = x86Format({ levels: 4, oas: 48 });
const vtdSs = vtdSsFormat({ levels: 4, oas: 48 });
const amdV1 = amdV1Format({ levels: 4, oas: 48 });
const m = machine();
const counter = m.bus.counter('walker');
// 64 pages whose walks share no table below the root: every walk reads four different descriptors.
const iovas: number[] = [];
for (let k = 0; k < MAPPINGS; k++) iovas.push(k * (2 ** 39 + 2 ** 30 + 2 ** 21 + 2 ** 12) + 0x10);
function tableOf(f: PageTableFormat): IoPageTable {
  const t = new IoPageTable(f, m);
  for (const [k, iova] of iovas.entries()) t.map(BigInt(iova - 0x10), BigInt(2 ** 32 + k * 4096), 4096n, RW);
  return t;
}
const table = tableOf(format);
const x86Table = tableOf(x86);
const vtdSsTable = tableOf(vtdSs);
const amdV1Table = tableOf(amdV1);

/** `WALKS` walks of the 64 pages on `f`'s table, into one reused WalkState (an IOMMU model's miss path). */
function walks(f: PageTableFormat, t: IoPageTable): () => number {
  const options = { bus: m.bus, counter };
  const state = new WalkState();
  return () => {
    let sink = 0;
    for (let i = 0; i < WALKS; i++)
      if (walkInto(f, t.rootPa, iovas[i % MAPPINGS]!, options, state)) sink += state.pa;
    return sink;
  };
}

/** The same walks through `walk()`, which returns a fresh result with the leaf's attributes decoded. */
function allocatingWalks(): number {
  const options = { bus: m.bus, counter };
  let sink = 0;
  for (let i = 0; i < WALKS; i++) {
    const r = walk(format, table.rootPa, iovas[i % MAPPINGS]!, options);
    if (r.ok) sink += r.pa;
  }
  return sink;
}

// The baseline's tables: each table page the walks touch, copied into its own Uint32Array.
const frames: Uint32Array[] = [];
for (const iova of iovas) {
  walk(format, table.rootPa, iova, {
    bus: m.bus,
    counter,
    onStep: (_level, address) => {
      const base = Math.floor(address / 4096) * 4096;
      const words = new Uint32Array(1024);
      m.bus.readWords(base, words, 1024, counter);
      frames[(base - RAM_BASE) / 4096] = words;
    },
  });
}
const SPAN = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12];

function bareWalk(iova: number): number {
  let tablePa = table.rootPa;
  for (let level = 0; level < 4; level++) {
    const words = frames[(tablePa - RAM_BASE) / 4096]!;
    const idx = Math.floor(iova / SPAN[level]!) % 512;
    const lo = words[2 * idx]!;
    const hi = words[2 * idx + 1]!;
    if ((lo & 1) === 0) return -1;
    const next = (hi & 0xffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
    if (level === 3) return next + (iova % 4096);
    tablePa = next;
  }
  return -1;
}

// Both walks must agree before either is timed.
for (const iova of iovas) {
  const r = walk(format, table.rootPa, iova, { bus: m.bus, counter });
  if (!r.ok || r.pa !== bareWalk(iova)) throw new Error(`walk and baseline disagree at ${iova.toString(16)}`);
}

function mapGiB(pageSizes: bigint, f: PageTableFormat = format): IoPageTable {
  const fresh = machine();
  const t = new IoPageTable(f, fresh, { pageSizes });
  t.map(0n, 2n ** 32n, 2n ** 30n, RW);
  return t;
}
function facts(): string[] {
  counter.reset();
  for (const iova of iovas) walk(format, table.rootPa, iova, { bus: m.bus, counter });
  const lines = [`walk(): ${counter.reads / MAPPINGS} memory reads per walk (${format.name})`];
  for (const [name, sizes] of [
    ['4 KiB pages', 1n << 12n],
    ['2 MiB blocks', 1n << 21n],
  ] as const) {
    const fresh = machine();
    const t = new IoPageTable(format, fresh, { pageSizes: sizes });
    t.map(0n, 2n ** 32n, 2n ** 30n, RW);
    lines.push(
      `map 1 GiB as ${name}: ${t.tablePages} table pages, ${fresh.bus.allocatedBytes / 1024} KiB of RAM allocated by the bus, ${fresh.counter.writes} bus writes`,
    );
  }
  return lines;
}

/** The least a 4 KiB mapping of 1 GiB must do: write 262144 encoded 8-byte leaves. */
const leaves = new Uint32Array(2 * 262144);
function writeLeaves(): number {
  for (let i = 0; i < 262144; i++) {
    leaves[2 * i] = (i * 4096 + 0x743) >>> 0;
    leaves[2 * i + 1] = 1;
  }
  return leaves[5]!;
}

export default defineBenchSuite({
  name: 'page tables',
  about:
    'The hardware walker and the io-pgtable engine: VMSAv8-64 (4K granule, 48-bit input), x86-64, the VT-d second stage and AMD v1 (4 levels).',
  facts,
  groups: [
    {
      name: `uncached 4-level walk, per ${WALKS} walks`,
      baseline: {
        name: 'the same lookups over Uint32Arrays',
        fn: () => {
          let sink = 0;
          for (let i = 0; i < WALKS; i++) sink += bareWalk(iovas[i % MAPPINGS]!);
          return sink;
        },
      },
      cases: [
        {
          name: 'walkInto() through the memory bus with an AccessCounter',
          target: 0.5,
          fn: walks(format, table),
        },
        { name: 'walkInto(), x86-64 4-level', fn: walks(x86, x86Table) },
        { name: 'walkInto(), VT-d second stage 4-level', fn: walks(vtdSs, vtdSsTable) },
        { name: 'walkInto(), AMD v1 Mode 4', fn: walks(amdV1, amdV1Table) },
        { name: 'walk(): a fresh result with decoded attributes', fn: allocatingWalks },
      ],
    },
    {
      name: 'IoPageTable.map of 1 GiB on a fresh table',
      baseline: { name: 'write 262144 encoded leaves into a Uint32Array', fn: writeLeaves },
      cases: [
        {
          name: 'as 4 KiB pages: 262144 entries per call',
          target: 0.5,
          fn: () => mapGiB(1n << 12n).tablePages,
        },
        { name: 'as 2 MiB blocks: 512 entries per call', fn: () => mapGiB(1n << 21n).tablePages },
        { name: 'x86-64, as 4 KiB pages', fn: () => mapGiB(1n << 12n, x86).tablePages },
        { name: 'VT-d second stage, as 4 KiB pages', fn: () => mapGiB(1n << 12n, vtdSs).tablePages },
        { name: 'AMD v1, as 4 KiB pages', fn: () => mapGiB(1n << 12n, amdV1).tablePages },
      ],
    },
  ],
});
