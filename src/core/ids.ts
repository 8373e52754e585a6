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
 * instead of one per id, which was the largest cost of a run on the memory store. It holds no
 * state anyone can observe, so it is the one module-level mutable value here.
 */
const entropy = Buffer.alloc(4096);
let entropyOffset = entropy.length;

/** A new id such as `agt_01jd3k…` (26 characters after the prefix, like a ULID). */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  if (entropyOffset + 16 > entropy.length) {
    randomFillSync(entropy);
    entropyOffset = 0;
  }
  let rand = '';
  for (let i = 0; i < 16; i++) rand += ALPHABET[(entropy[entropyOffset + i] as number) % 32];
  entropyOffset += 16;
  return `${prefix}_${time}${rand}`;
}

/** True when `value` has the shape of an id with the given prefix. */
export function isId(prefix: IdPrefix, value: string): boolean {
  return value.length === prefix.length + 27 && value.startsWith(`${prefix}_`);
}
