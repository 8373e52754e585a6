/**
 * Identifiers: a short type prefix, then a time-ordered, random, URL-safe body
 * (`agt_01jd…`). Time-ordered so that ids sort by creation, random so they never collide across nodes.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

/** The prefixes in use, one per kind of object. */
export type IdPrefix = 'agt' | 'ins' | 'evt' | 'thr' | 'msg' | 'run';

/** A new id such as `agt_01jd3k…` (26 characters after the prefix, like a ULID). */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += ALPHABET[(bytes[i] as number) % 32];
  return `${prefix}_${time}${rand}`;
}

/** True when `value` has the shape of an id with the given prefix. */
export function isId(prefix: IdPrefix, value: string): boolean {
  return value.length === prefix.length + 27 && value.startsWith(`${prefix}_`);
}
