/**
 * The frequency sketch TinyLFU admits with: a count-min sketch of 4-bit counters that forgets
 * (halves) periodically, so "frequent" always means "frequent lately". Also owns the key hashers
 * the policies use.
 */

/**
 * A sketch's counters as a working-set checkpoint keeps them: the width they were laid out for,
 * the counters (one byte each, 4 × width) in base64, and the additions since the last halving.
 */
export interface SketchSnapshot {
  readonly width: number;
  readonly counters: string;
  readonly additions: number;
}

/** Four rows; the minimum over rows is the estimate (count-min). */
const ROWS = 4;
/** Counters saturate here: TinyLFU only needs to rank keys near the admission boundary. */
const MAX_COUNT = 15;
/** Per-row odd multipliers; the top bits of `hash × seed` pick the row's counter. */
const SEED0 = 0x97cb3127;
const SEED1 = 0xb492b66f;
const SEED2 = 0x9ae16a3b;
const SEED3 = 0xc2b2ae35;

/** A strong 32-bit integer finaliser (lowbias32), so weak input hashes still spread over the rows. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}

/** A KeyHasher for string keys (FNV-1a). */
export { hashString } from '../../core/hash.ts';

/** A well-mixed 32-bit hash of an integer (high bits of safe integers folded in): a KeyHasher for number keys. */
export function hashInt(n: number): number {
  const high = (n / 4294967296) | 0;
  return mix32((n | 0) ^ Math.imul(high, 0x9e3779b1));
}

/** Smallest power of two ≥ n (n ≤ 2^30). */
function ceilPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** (32 - Math.clz32(n - 1));
}

/** A count-min sketch of 4-bit counters with TinyLFU's periodic halving ("reset"). */
export class CountMinSketch {
  /** Counters per row: a power of two ≥ the capacity it was sized for, at least 16. */
  readonly width: number;
  /** Additions after which every counter is halved. */
  readonly sampleSize: number;
  private readonly table: Uint8Array;
  /** The same counters four at a time, so halving is a word-wide shift. */
  private readonly words: Uint32Array;
  /** Right shift that keeps log2(width) top bits of a 32-bit product. */
  private readonly shift: number;
  private additionsSinceReset = 0;

  /** Sizes the sketch for a cache of `capacity` keys. */
  constructor(capacity: number) {
    this.width = Math.max(16, ceilPowerOfTwo(Math.min(Math.max(1, capacity), 2 ** 28)));
    this.sampleSize = 10 * this.width;
    this.table = new Uint8Array(ROWS * this.width);
    this.words = new Uint32Array(this.table.buffer);
    this.shift = 32 - Math.log2(this.width);
  }

  /** Additions counted towards the next halving. */
  get additions(): number {
    return this.additionsSinceReset;
  }

  /** Records one occurrence of the key with this hash. */
  increment(hash: number): void {
    const h = mix32(hash);
    const t = this.table;
    const w = this.width;
    const s = this.shift;
    const i0 = Math.imul(h, SEED0) >>> s;
    const i1 = w + (Math.imul(h, SEED1) >>> s);
    const i2 = 2 * w + (Math.imul(h, SEED2) >>> s);
    const i3 = 3 * w + (Math.imul(h, SEED3) >>> s);
    let added = false;
    // Saturated counters do not count as additions, as in Caffeine, so a few very hot keys do
    // not hurry the halving for everyone else.
    if (t[i0]! < MAX_COUNT) {
      t[i0]!++;
      added = true;
    }
    if (t[i1]! < MAX_COUNT) {
      t[i1]!++;
      added = true;
    }
    if (t[i2]! < MAX_COUNT) {
      t[i2]!++;
      added = true;
    }
    if (t[i3]! < MAX_COUNT) {
      t[i3]!++;
      added = true;
    }
    if (added && ++this.additionsSinceReset >= this.sampleSize) this.reset();
  }

  /** The estimated recent occurrences of the key with this hash, 0 to 15 (never an underestimate before halving). */
  frequency(hash: number): number {
    const h = mix32(hash);
    const t = this.table;
    const w = this.width;
    const s = this.shift;
    const a = t[Math.imul(h, SEED0) >>> s]!;
    const b = t[w + (Math.imul(h, SEED1) >>> s)]!;
    const c = t[2 * w + (Math.imul(h, SEED2) >>> s)]!;
    const d = t[3 * w + (Math.imul(h, SEED3) >>> s)]!;
    return Math.min(a, b, c, d);
  }

  /** The counters as they are now, to restore in a later process (see {@link restore}). */
  snapshot(): SketchSnapshot {
    return {
      width: this.width,
      counters: Buffer.from(this.table.buffer, this.table.byteOffset, this.table.byteLength).toString(
        'base64',
      ),
      additions: this.additionsSinceReset,
    };
  }

  /**
   * Takes the counters of a snapshot of a sketch of the same width; false (and nothing changed)
   * when the width differs or the snapshot is malformed: counters laid out for another width
   * would credit the wrong keys.
   */
  restore(snapshot: SketchSnapshot): boolean {
    if (snapshot.width !== this.width || typeof snapshot.counters !== 'string') return false;
    const bytes = Buffer.from(snapshot.counters, 'base64');
    if (bytes.length !== this.table.length) return false;
    for (let i = 0; i < bytes.length; i++) this.table[i] = Math.min(MAX_COUNT, bytes[i]!);
    const additions = Number.isSafeInteger(snapshot.additions) ? snapshot.additions : 0;
    this.additionsSinceReset = Math.min(Math.max(0, additions), this.sampleSize - 1);
    return true;
  }

  /** Halves every counter: old popularity decays so a shifted workload can take over. */
  private reset(): void {
    const words = this.words;
    let odd = 0;
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      // Counters are ≤ 15, so each byte's low bit says whether halving truncated it.
      odd += popcount(word & 0x01010101);
      words[i] = (word >>> 1) & 0x7f7f7f7f;
    }
    // Each key owns one counter per row; truncations are the ROWS-th part of lost additions.
    this.additionsSinceReset = Math.max(0, (this.additionsSinceReset - Math.floor(odd / ROWS)) >>> 1);
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
