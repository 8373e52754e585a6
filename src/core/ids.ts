/**
 * Identifiers: a short type prefix, then a time-ordered, random, URL-safe body
 * (`agt_01jd…`). Time-ordered so that ids sort by creation, random so they never collide across nodes.
 */
import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

/** The prefixes in use, one per kind of object. */
export type IdPrefix = 'agt' | 'ins' | 'evt' | 'thr' | 'msg' | 'run' | 'key';

/**
 * Random bytes drawn from a 4 KiB buffer refilled when spent: one `randomFillSync` per 256 ids
 * instead of one per id, which was the largest cost of a run on the memory store. It and the
 * scratch buffer below hold no state anyone can observe (every id is read out before newId
 * returns), so they are the module-level mutable values here.
 */
const entropy = Buffer.alloc(4096);
let entropyOffset = entropy.length;

/** The alphabet's character codes, and the id being written: `ppp_` + 10 time + 16 random characters. */
const CODES = Buffer.from(ALPHABET, 'latin1');
const ID_LENGTH = 30;
const out = Buffer.alloc(ID_LENGTH);
out[3] = 0x5f; // '_'
/** The millisecond whose time characters `out` holds. */
let outTime = -1;

/**
 * A new id such as `agt_01jd3k…` (26 characters after the prefix, like a ULID). Written into one
 * byte buffer and read out as one string: built by concatenation, an id was ~750 bytes of
 * intermediate strings, and a run makes four.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  out.write(prefix, 0, 3, 'latin1');
  if (now !== outTime) {
    outTime = now;
    let t = Math.floor(now);
    for (let i = 13; i >= 4; i--) {
      out[i] = CODES[t % 32] as number;
      t = Math.floor(t / 32);
    }
  }
  if (entropyOffset + 16 > entropy.length) {
    randomFillSync(entropy);
    entropyOffset = 0;
  }
  for (let i = 0; i < 16; i++) out[14 + i] = CODES[(entropy[entropyOffset + i] as number) % 32] as number;
  entropyOffset += 16;
  return out.toString('latin1', 0, ID_LENGTH);
}

/** True when `value` has the shape of an id with the given prefix. */
export function isId(prefix: IdPrefix, value: string): boolean {
  return value.length === prefix.length + 27 && value.startsWith(`${prefix}_`);
}
