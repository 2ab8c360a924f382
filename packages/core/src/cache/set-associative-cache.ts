/**
 * The shape of a hardware cache, shared by every vendor model: a fixed number of sets, each with a fixed
 * number of ways, whose entries are tagged by a few numbers (kind, VMID/DID/DomainID, ASID/PASID, page
 * number, page shift, level…) kept in one typed array. Real TLBs, walk caches and configuration caches
 * are built this way; modelling the geometry makes capacity misses, conflict misses and a forgotten
 * invalidation observable the way they are on hardware.
 *
 * The cache holds tags only. A vendor keeps each entry's payload (output address, permissions…) in its own
 * typed arrays indexed by the slot number the cache returns, so a lookup allocates nothing. The caller
 * picks the set (usually from the low bits of the page number), which lets an address-specific
 * invalidation visit one set while a VMID- or ASID-wide one scans them all.
 *
 * Tags are doubles, so any integer up to 2^53 (a page number of a 64-bit address) is exact. A lookup
 * compares each way's last tag first: put the tag most likely to differ between the ways of a set (the
 * page number) last.
 */
import { ConfigError } from '../errors/config-error.js';

/** How a full set chooses the way to replace. */
export type ReplacementPolicy = 'lru' | 'plru' | 'random';

export interface CacheGeometry {
  readonly sets: number;
  readonly ways: number;
  readonly policy: ReplacementPolicy;
  /** Seed of the `random` policy (same seed, same victims). */
  readonly seed?: number;
}

/** Pseudo-LRU keeps one bit per inner node of a binary tree over the ways, in a 32-bit word per set. */
const PLRU_MAX_WAYS = 32;

export class SetAssociativeCache {
  readonly sets: number;
  readonly ways: number;
  readonly policy: ReplacementPolicy;
  readonly capacity: number;
  /** Tags of slot `s` are `tags[s * tagCount … s * tagCount + tagCount - 1]`. */
  readonly tags: Float64Array;
  /**
   * The tags a lookup, an insert or a masked invalidation compares with: fill `probe[0…tagCount-1]`
   * first. One array per cache, so no call allocates.
   */
  readonly probe: Float64Array;
  hits = 0;
  misses = 0;
  evictions = 0;
  invalidations = 0;
  /**
   * Bumped by every change of content (insert, invalidation, clear), never by a lookup: while it stands
   * still, every lookup finds what it found before ({@link HitMemo} relies on it).
   */
  version = 0;
  /** The set and slot of the last counted hit ({@link lookup}, {@link hit}); `lastSlot` is -1 after a miss. */
  lastSet = -1;
  lastSlot = -1;

  /** sets − 1 when sets is a power of two (a set is then the index's low bits, no division), else -1. */
  private readonly setMask: number;
  private readonly valid: Uint8Array;
  /** LRU: the tick of each slot's last use. */
  private readonly lastUse: Float64Array;
  private tick = 0;
  /** Pseudo-LRU: one tree per set; a node's bit points at the half to replace next. */
  private readonly plruBits: Uint32Array;
  /**
   * Pseudo-LRU: using way w sets the bits on its path to fixed values, so a touch is
   * `bits & plruKeep[w] | plruSet[w]` (both worked out once by {@link plruTouch}).
   */
  private readonly plruKeep: Uint32Array;
  private readonly plruSet: Uint32Array;
  /** Random: xorshift32 state. */
  private rng: number;
  private live = 0;

  /**
   * @param name where the geometry came from, for errors (`smmuv3.tlb`)
   * @param onEvict hears about a valid entry about to be replaced by {@link insert} (not about invalidations)
   */
  constructor(
    name: string,
    geometry: CacheGeometry,
    readonly tagCount: number,
    private readonly onEvict?: (slot: number) => void,
  ) {
    checkGeometry(name, geometry, tagCount);
    this.sets = geometry.sets;
    this.ways = geometry.ways;
    this.policy = geometry.policy;
    this.capacity = this.sets * this.ways;
    this.setMask = (this.sets & (this.sets - 1)) === 0 && this.sets <= 2 ** 30 ? this.sets - 1 : -1;
    this.tags = new Float64Array(this.capacity * tagCount);
    this.probe = new Float64Array(tagCount);
    this.valid = new Uint8Array(this.capacity);
    this.lastUse = new Float64Array(this.policy === 'lru' ? this.capacity : 0);
    this.plruBits = new Uint32Array(this.policy === 'plru' ? this.sets : 0);
    const plruWays = this.policy === 'plru' ? this.ways : 0;
    this.plruSet = Uint32Array.from({ length: plruWays }, (_, way) => plruTouch(0, way, this.ways));
    this.plruKeep = Uint32Array.from(
      { length: plruWays },
      // Bits off the path keep their value: the two touches differ exactly there.
      (_, way) => plruTouch(0, way, this.ways) ^ plruTouch(0xffff_ffff, way, this.ways),
    );
    // xorshift32 has one forbidden state, 0.
    this.rng = (geometry.seed ?? 0) >>> 0 || 0x9e3779b9;
  }

  /** How many slots hold an entry. */
  get size(): number {
    return this.live;
  }

  /** The set an index (a page number, a StreamID…) falls in. */
  setOf(index: number): number {
    // `>>> 0` of an integer below 2^53 is its value modulo 2^32, exactly: the low bits survive.
    return this.setMask >= 0 ? (index >>> 0) & this.setMask : index % this.sets;
  }

  /** The slot in `set` whose tags equal {@link probe}, counting a hit (and refreshing it) or a miss; -1 if none. */
  lookup(set: number): number {
    const slot = this.find(set);
    if (slot < 0) {
      this.miss();
      return -1;
    }
    this.hit(set, slot);
    return slot;
  }

  /** Like {@link lookup} without counting or refreshing: for a caller that tries several sets before a miss. */
  find(set: number): number {
    const { tags, probe, valid } = this;
    const last = this.tagCount - 1;
    const key = probe[last]!;
    const first = set * this.ways;
    const end = first + this.ways;
    for (let slot = first; slot < end; slot++) {
      const base = slot * (last + 1);
      // The last tag first (see the class comment): most ways of a set differ there.
      if (valid[slot] === 0 || tags[base + last] !== key) continue;
      let t = 0;
      while (t < last && tags[base + t] === probe[t]) t++;
      if (t === last) return slot;
    }
    return -1;
  }

  /** Counts a hit on a slot {@link find} returned and refreshes it. */
  hit(set: number, slot: number): void {
    this.hits++;
    this.lastSet = set;
    this.lastSlot = slot;
    this.touch(set, slot);
  }

  /**
   * A hit replayed on `slot` ({@link HitMemo}): when it is the cache's last hit, and so the way its set used
   * last, refreshing it again changes no later replacement choice, and only the count moves.
   */
  replayHit(set: number, slot: number): void {
    if (slot === this.lastSlot && set === this.lastSet) this.hits++;
    else this.hit(set, slot);
  }

  /** Counts a miss, for a caller that tried several sets with {@link find}. */
  miss(): void {
    this.misses++;
    this.lastSlot = -1;
  }

  /**
   * Stores {@link probe} in `set` and returns its slot, for the caller to fill the payload: the slot
   * already holding these tags, else a free way, else the policy's victim (counted as an eviction).
   */
  insert(set: number): number {
    this.version++;
    let slot = this.find(set);
    if (slot < 0) {
      slot = this.freeWay(set);
      if (slot < 0) {
        slot = this.victim(set);
        this.evictions++;
        this.onEvict?.(slot);
      } else {
        this.valid[slot] = 1;
        this.live++;
      }
      // A loop, not TypedArray.set: a native call costs more than copying a handful of tags.
      const n = this.tagCount;
      for (let t = 0; t < n; t++) this.tags[slot * n + t] = this.probe[t]!;
    }
    this.touch(set, slot);
    return slot;
  }

  isValid(slot: number): boolean {
    return this.valid[slot] === 1;
  }

  /** Tag `t` of `slot`. */
  tag(slot: number, t: number): number {
    return this.tags[slot * this.tagCount + t]!;
  }

  /** Drops one entry (no-op if the slot is free). */
  invalidateSlot(slot: number): void {
    if (this.valid[slot] === 0) return;
    this.valid[slot] = 0;
    this.live--;
    this.invalidations++;
    this.version++;
  }

  /**
   * Drops, in one set (`set` ≥ 0) or in every set (`set` = -1), each entry whose tags equal {@link probe}
   * at the tag positions whose bit is set in `mask` (bit t for tag t). Returns how many.
   */
  invalidateMatching(mask: number, set = -1): number {
    const from = set < 0 ? 0 : set * this.ways;
    const to = set < 0 ? this.capacity : from + this.ways;
    const before = this.invalidations;
    for (let slot = from; slot < to; slot++) if (this.matches(slot, mask)) this.invalidateSlot(slot);
    return this.invalidations - before;
  }

  /**
   * Drops each entry, in one set or in all (`set` = -1), for which `drop(slot)` is true: for matches a tag
   * mask cannot express (address ranges, level filters). Returns how many.
   */
  invalidateWhere(drop: (slot: number) => boolean, set = -1): number {
    const from = set < 0 ? 0 : set * this.ways;
    const to = set < 0 ? this.capacity : from + this.ways;
    const before = this.invalidations;
    for (let slot = from; slot < to; slot++)
      if (this.valid[slot] === 1 && drop(slot)) this.invalidateSlot(slot);
    return this.invalidations - before;
  }

  /** Drops everything; returns how many entries there were. Counters other than invalidations are kept. */
  clear(): number {
    const dropped = this.live;
    this.version++;
    this.valid.fill(0);
    this.plruBits.fill(0);
    this.live = 0;
    this.invalidations += dropped;
    return dropped;
  }

  /** The valid slots, in slot order (for inspection and snapshots, not for hot paths). */
  slots(): number[] {
    const out: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) if (this.valid[slot] === 1) out.push(slot);
    return out;
  }

  private matches(slot: number, mask: number): boolean {
    if (this.valid[slot] === 0) return false;
    const base = slot * this.tagCount;
    for (let t = 0; t < this.tagCount; t++)
      if ((mask >>> t) & 1 && this.tags[base + t] !== this.probe[t]) return false;
    return true;
  }

  private freeWay(set: number): number {
    const first = set * this.ways;
    for (let slot = first; slot < first + this.ways; slot++) if (this.valid[slot] === 0) return slot;
    return -1;
  }

  private touch(set: number, slot: number): void {
    if (this.policy === 'lru') this.lastUse[slot] = ++this.tick;
    else if (this.policy === 'plru')
      this.plruBits[set] = this.plruTouched(this.plruBits[set]!, slot - set * this.ways);
  }

  private plruTouched(bits: number, way: number): number {
    return ((bits & this.plruKeep[way]!) | this.plruSet[way]!) >>> 0;
  }

  private victim(set: number): number {
    const first = set * this.ways;
    if (this.policy === 'plru') return first + plruVictim(this.plruBits[set]!, this.ways);
    if (this.policy === 'random') return first + (this.nextRandom() % this.ways);
    let oldest = first;
    for (let slot = first + 1; slot < first + this.ways; slot++)
      if (this.lastUse[slot]! < this.lastUse[oldest]!) oldest = slot;
    return oldest;
  }

  private nextRandom(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}

/**
 * Tree pseudo-LRU over `ways` (a power of two): node 1 is the root, node i's children are 2i and 2i+1,
 * and a node's bit says which child holds the next victim (0: left, 1: right). Using a way turns every
 * bit on its path away from it.
 */
function plruTouch(bits: number, way: number, ways: number): number {
  let node = 1;
  for (let half = ways >>> 1; half >= 1; half >>>= 1) {
    const right = (way & half) !== 0;
    bits = right ? bits & ~(1 << node) : bits | (1 << node);
    node = 2 * node + (right ? 1 : 0);
  }
  return bits >>> 0;
}

/** The way the tree's bits point at. */
function plruVictim(bits: number, ways: number): number {
  let node = 1;
  let way = 0;
  for (let half = ways >>> 1; half >= 1; half >>>= 1) {
    const right = ((bits >>> node) & 1) === 1;
    if (right) way |= half;
    node = 2 * node + (right ? 1 : 0);
  }
  return way;
}

/**
 * Whether tree pseudo-LRU can manage `ways` ways: a power of two up to 32 (one bit per inner node of the
 * tree, in a 32-bit word). Options schemas use it to refuse a geometry before a cache is built.
 */
export function plruSupports(ways: number): boolean {
  return Number.isSafeInteger(ways) && ways > 0 && (ways & (ways - 1)) === 0 && ways <= PLRU_MAX_WAYS;
}

/**
 * What is wrong with a cache geometry as options give it — `entries` (named `entriesName` in the message) in
 * sets of `ways` under `policy` — or undefined: what every vendor's options schema refuses before a cache
 * is built. A cache of 0 entries (none) takes any way count.
 */
export function cacheOptionProblem(
  entriesName: string,
  entries: number,
  ways: number,
  policy: ReplacementPolicy,
): string | undefined {
  if (entries % ways !== 0) return `${entriesName} ${entries} is not a whole number of sets of ${ways} ways`;
  if (entries > 0 && policy === 'plru' && !plruSupports(ways))
    return `pseudo-LRU needs a power of two up to ${PLRU_MAX_WAYS} ways (got ${ways})`;
  return undefined;
}

function checkGeometry(name: string, geometry: CacheGeometry, tagCount: number): void {
  const issues: { path: string; message: string }[] = [];
  const positive = (key: 'sets' | 'ways', value: number) => {
    if (!Number.isSafeInteger(value) || value <= 0)
      issues.push({ path: `${name}.${key}`, message: `must be a positive integer (got ${value})` });
  };
  positive('sets', geometry.sets);
  positive('ways', geometry.ways);
  const { ways, policy } = geometry;
  if (policy === 'plru' && Number.isSafeInteger(ways) && ways !== 0 && !plruSupports(ways))
    issues.push({
      path: `${name}.ways`,
      message: `pseudo-LRU needs a power of two up to ${PLRU_MAX_WAYS} (got ${ways})`,
    });
  if (!['lru', 'plru', 'random'].includes(policy))
    issues.push({ path: `${name}.policy`, message: `must be lru, plru or random (got ${String(policy)})` });
  if (!Number.isSafeInteger(tagCount) || tagCount <= 0 || tagCount > 31)
    issues.push({ path: name, message: `needs 1 to 31 tags (got ${tagCount})` });
  if (issues.length) throw new ConfigError(issues);
}
