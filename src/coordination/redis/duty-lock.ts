/**
 * The Redis DutyLock: one key per duty (`<prefix>duty:<name>`) holding the node id, set with NX
 * and a TTL; the holder renews it by the same script, and releases it only while it is still its
 * own, so a node whose hold expired never drops the hold another node took since.
 */
import type { Redis } from 'ioredis';
import type { DutyLock } from '../duty-lock.ts';
import { LuaScript } from './lua-script.ts';

const SCRIPT = new LuaScript(
  'duty lock',
  `
local mode = ARGV[1]
if mode == 'hold' then
  local holder = redis.call('GET', KEYS[1])
  if holder == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  if holder then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
elseif mode == 'release' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
  return 1
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);

/** Duties held through Redis, per node id. */
export class RedisDutyLock implements DutyLock {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #nodeId: string;

  constructor(deps: { redis: Redis; prefix: string; nodeId: string }) {
    this.#redis = deps.redis;
    this.#prefix = deps.prefix;
    this.#nodeId = deps.nodeId;
  }

  async hold(name: string, ttlMs: number): Promise<boolean> {
    const held = await SCRIPT.run(
      this.#redis,
      [this.#key(name)],
      ['hold', this.#nodeId, Math.max(1, Math.round(ttlMs))],
    );
    return held === 1;
  }

  async release(name: string): Promise<void> {
    await SCRIPT.run(this.#redis, [this.#key(name)], ['release', this.#nodeId]);
  }

  #key(name: string): string {
    return `${this.#prefix}duty:${name}`;
  }
}
