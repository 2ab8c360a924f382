import { describe, expect, it } from 'vitest';
import { DESC_LEAF, DESC_TABLE } from './format.js';
import { buildTableAt } from './table-builder.js';
import { vmsaFormat } from './vmsa/vmsa-format.js';
import { x86Format } from './x86/x86-format.js';

/** A flat memory of pages from 0x10000, and the walk a hardware walker would do over it. */
function memory() {
  const words = new Map<bigint, number>();
  let next = 0x10000n;
  return {
    words,
    target: {
      allocTable: () => {
        const page = next;
        next += 0x1000n;
        return page;
      },
      write: (address: bigint, w: Uint32Array) => {
        words.set(address, w[0]!);
        words.set(address + 4n, w[1]!);
      },
    },
    read: (address: bigint): [number, number] => [words.get(address) ?? 0, words.get(address + 4n) ?? 0],
  };
}

describe('buildTableAt', () => {
  for (const format of [
    x86Format({ levels: 4, oas: 52, gigaPages: true }),
    vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }),
  ])
    it(`${format.name}: every mapping walks to its page, tables are shared, nothing else is mapped`, () => {
      const m = memory();
      const maps = [
        { iova: 0x1000_0000n, pa: 0x7000_0000n },
        { iova: 0x1000_1000n, pa: 0x7000_5000n },
        { iova: 0x40_0000_0000n, pa: 0x7100_0000n },
      ];
      const root = buildTableAt(format, maps, { read: true, write: true }, m.target);
      expect(root).toBe(0x10000n);
      const walk = (iova: bigint): number | undefined => {
        let table = root;
        for (let level = format.startLevel; ; level = format.nextLevel(level)) {
          const at = table + BigInt(format.index(Number(iova), level) * format.descriptorBytes);
          const [lo, hi] = m.read(at);
          const kind = format.kind(lo, hi, level);
          if (kind === DESC_LEAF) return format.outputAddress(lo, hi, level);
          if (kind !== DESC_TABLE) return undefined;
          table = BigInt(format.tableAddress(lo, hi));
        }
      };
      for (const { iova, pa } of maps) expect(walk(iova)).toBe(Number(pa));
      // The leaves carry the mapping's attributes without hardware dirty tracking.
      const expected = new Uint32Array(2);
      format.encodeLeaf(
        0x7000_0000,
        format.leafLevel,
        format.leafTemplate({ read: true, write: true }, false),
        expected,
        0,
      );
      expect([...m.words.values()]).toEqual(expect.arrayContaining([expected[0], expected[1]]));
      expect(walk(0x1000_2000n)).toBeUndefined();
      // Two leaves share the path to their leaf table; the third needs its own below the root.
      const tables = 1 + (format.levels - 1) + (format.levels - 2);
      expect(m.words.size / 2).toBe(maps.length + tables - 1);
    });
});
