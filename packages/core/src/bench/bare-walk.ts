/**
 * The baseline of a translation-miss benchmark: the four lookups of a 4-level walk over plain typed arrays
 * (one 512-entry table per level, 8-byte descriptors), cycling through `pages` pages from `iova` as the
 * miss cases do — what a miss would cost with nothing but the indexing and the loads.
 */
const SPAN = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12];

export function bareFourLevelWalks(pages: number, iova: number): () => number {
  const tables = Array.from({ length: 4 }, () => new Uint32Array(1024));
  for (let i = 0; i < 512; i++) for (const t of tables) t[2 * i] = (i << 12) | 3;
  let page = 0;
  return () => {
    page = page + 1 === pages ? 0 : page + 1;
    const input = iova + page * 4096;
    let out = 0;
    for (let level = 0; level < 4; level++) {
      const index = Math.floor(input / SPAN[level]!) % 512;
      const lo = tables[level]![2 * index]!;
      if ((lo & 3) === 0) return -1;
      out = lo & 0xffff_f000;
    }
    return out;
  };
}
