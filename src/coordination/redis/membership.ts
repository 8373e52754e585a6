/**
 * The membership of a cluster, in Redis. Every node heartbeats every `heartbeatMs`; every node
 * checks every `sweepIntervalMs` for nodes whose heartbeat stopped more than `deadAfterMs` ago, and
 * for each such node one of them (whoever takes its sweep lock) runs the sweep, then forgets it.
 *
 * Keys (under the cluster's prefix):
 * - `nodes` (hash): node id → JSON of address, startedAt and the stats of its last heartbeat;
 * - `nodes:beats` (sorted set): node id → heartbeatAt, the time of its last heartbeat;
 * - `nodes:tick` (string): the last time any node ran a membership script;
 * - `nodes:sweep:{id}` (string, PX): the lock of a dead node's sweep, holding the sweeper's token;
 *   it lives `max(3 × sweepIntervalMs, 1 s)` and is renewed at every check while the sweep runs, so
 *   a sweeper that dies mid-sweep is replaced (a sweep must therefore be idempotent).
 *
 * Time. Heartbeats are stamped, and compared, with Redis's clock (`TIME` inside the scripts), never
 * a node's: the clocks of nodes differ, and a node whose clock runs ahead must not make another look
 * dead. The injected clock only schedules the timers.
 *
 * Outages. Redis unreachable: `nodes()` rejects `COORDINATION_UNAVAILABLE`; heartbeats and checks
 * fail, are logged once, and resume by themselves when Redis returns (the client reconnects). A node
 * must not be declared dead for not beating while nobody could reach Redis: every script records
 * in `nodes:tick` when it ran, and when a script finds that no node ran one for longer than
 * `min(2 × heartbeatMs, deadAfterMs)` (Redis was down, restarted, or unreachable from every node),
 * it moves every heartbeat forward by that gap, as if time had stopped while Redis was away. A
 * node still missing `deadAfterMs` after Redis returns is dead and swept. A node cut off alone
 * while the others still reach Redis gets no such grace: for the cluster it is gone, its runs are
 * recovered elsewhere, and when it reaches Redis again it is listed again (and logs that it was
 * declared dead). The same grace delays, by up to `deadAfterMs`, the sweep of nodes that died while
 * no node was running at all (a whole cluster stopped and started again). If Redis loses its data,
 * nodes that died meanwhile are never swept here: the run store's node stamps are the backstop.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import { validationError } from '../../core/errors.ts';
import { type Logger, silentLogger } from '../../core/logger.ts';
import { intOption, rejectUnknownKeys } from '../../core/options.ts';
import type { Membership, NodeInfo, NodeStats } from '../membership.ts';
import { LuaScript } from './lua-script.ts';

/** Options of the Redis membership. */
export interface RedisMembershipOptions {
  /** How often a node heartbeats. @default 2000 */
  heartbeatMs?: number;
  /**
   * How long after its last heartbeat a node is dead; more than heartbeatMs, and in production
   * well more than heartbeatMs plus the client's reconnect backoff (up to 2 s), so that nodes coming
   * back at slightly different times after a Redis outage are not swept. @default 10000
   */
  deadAfterMs?: number;
  /** How often every node checks for dead nodes. @default 2000 */
  sweepIntervalMs?: number;
}

/** {@link RedisMembershipOptions} with every default applied. */
export interface ResolvedRedisMembershipOptions {
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  readonly sweepIntervalMs: number;
}

/** Applies defaults and rejects bad values by field name (`membership.deadAfterMs must be …`). */
export function resolveRedisMembershipOptions(
  options: RedisMembershipOptions = {},
): ResolvedRedisMembershipOptions {
  rejectUnknownKeys('membership.', options, ['heartbeatMs', 'deadAfterMs', 'sweepIntervalMs']);
  const heartbeatMs = intOption('membership.heartbeatMs', options.heartbeatMs, 2000, 10, 3_600_000);
  const deadAfterMs = intOption('membership.deadAfterMs', options.deadAfterMs, 10_000, 20, 86_400_000);
  if (deadAfterMs <= heartbeatMs) {
    throw validationError(
      'membership.deadAfterMs',
      `must be more than membership.heartbeatMs (${heartbeatMs}), got ${deadAfterMs}`,
      { value: String(deadAfterMs) },
    );
  }
  const sweepIntervalMs = intOption(
    'membership.sweepIntervalMs',
    options.sweepIntervalMs,
    2000,
    10,
    3_600_000,
  );
  return { heartbeatMs, deadAfterMs, sweepIntervalMs };
}

/**
 * KEYS: beats, nodes, tick[, sweep lock]. ARGV[1] mode, ARGV[2] quietMs (the outage grace), then:
 * beat (id, json) → {now, known}; list (deadAfterMs) → [id, heartbeatAt, json]…;
 * dead (deadAfterMs, self) → [id, heartbeatAt, json]…; claim (deadAfterMs, id, token, lockMs) →
 * {heartbeatAt, json} or {}; renew (token, lockMs) → 1 | 0; forget (deadAfterMs, id, token) →
 * 1 forgotten | 2 it beat again | 0 lock lost; release (token); leave (id).
 */
const MEMBERSHIP = new LuaScript(
  'the membership script',
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[3]))
if last and now - last > tonumber(ARGV[2]) then
  -- No node reached Redis for a while: nobody could beat, so that time does not count.
  local gap = now - last
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do redis.call('ZADD', KEYS[1], string.format('%d', tonumber(all[i + 1]) + gap), all[i]) end
end
if not last or now > last then redis.call('SET', KEYS[3], string.format('%d', now)) end

local function entries(ids)
  local out = {}
  for i = 1, #ids, 2 do
    out[#out + 1] = ids[i]
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = redis.call('HGET', KEYS[2], ids[i]) or '{}'
  end
  return out
end

local mode = ARGV[1]
if mode == 'beat' then
  local known = redis.call('ZSCORE', KEYS[1], ARGV[3]) and 1 or 0
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  return { string.format('%d', now), known }
elseif mode == 'list' then
  return entries(redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%d', now - tonumber(ARGV[3])), '+inf', 'WITHSCORES'))
elseif mode == 'dead' then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - tonumber(ARGV[3])), 'WITHSCORES')
  local others = {}
  for i = 1, #stale, 2 do
    if stale[i] ~= ARGV[4] then
      others[#others + 1] = stale[i]
      others[#others + 1] = stale[i + 1]
    end
  end
  return entries(others)
elseif mode == 'claim' then
  local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[4]))
  if not at or at >= now - tonumber(ARGV[3]) then return {} end
  if not redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', ARGV[6]) then return {} end
  return { string.format('%d', at), redis.call('HGET', KEYS[2], ARGV[4]) or '{}' }
elseif mode == 'renew' then
  if redis.call('GET', KEYS[4]) ~= ARGV[3] then return 0 end
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  return 1
elseif mode == 'forget' then
  if redis.call('GET', KEYS[4]) ~= ARGV[5] then return 0 end
  redis.call('DEL', KEYS[4])
  local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[4]))
  if at and at >= now - tonumber(ARGV[3]) then return 2 end
  redis.call('ZREM', KEYS[1], ARGV[4])
  redis.call('HDEL', KEYS[2], ARGV[4])
  return 1
elseif mode == 'release' then
  if redis.call('GET', KEYS[4]) == ARGV[3] then redis.call('DEL', KEYS[4]) end
  return 'ok'
elseif mode == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[2], ARGV[3])
  return 'ok'
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);

/** What the membership talks to. */
export interface RedisMembershipDeps {
  /** A command connection (connection.ts); the membership does not close it. */
  redis: Redis;
  /** Prefix of every key. */
  prefix: string;
  /** This node's id, unique in the cluster. */
  nodeId: string;
  /** Schedules the heartbeat and the checks (timestamps come from Redis). */
  clock: Clock;
  /** @default silent */
  logger?: Logger;
}

/** A dead node's sweep this node holds the lock of. */
interface Sweeping {
  readonly token: string;
  /** The sweep resolved and the node is still to be forgotten (Redis was away when it ended). */
  done: boolean;
}

/** One {@link RedisMembership.watch} call. */
interface Watch {
  readonly sweep: (deadNodeId: string, info: NodeInfo) => Promise<void>;
  timer: TimerHandle | undefined;
  checking: boolean;
  stopped: boolean;
  /** Whether the last check failed (to log an outage once, and its end). */
  failing: boolean;
  readonly sweeping: Map<string, Sweeping>;
}

/** The nodes of a cluster sharing a Redis (and prefix). */
export class RedisMembership implements Membership {
  readonly nodeId: string;
  readonly options: ResolvedRedisMembershipOptions;
  readonly #redis: Redis;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #keys: readonly [string, string, string];
  readonly #lockPrefix: string;
  /** The outage grace: a gap longer than this with no script run moves every heartbeat forward. */
  readonly #quietMs: number;
  /** How long a sweep lock lives without renewal (renewed at every check while the sweep runs). */
  readonly #lockMs: number;
  #joined: { json: (stats: NodeStats) => string; stats: () => NodeStats } | undefined;
  #beatTimer: TimerHandle | undefined;
  #beating: Promise<void> | undefined;
  #beatFailing = false;
  readonly #watches = new Set<Watch>();

  constructor(deps: RedisMembershipDeps, options?: RedisMembershipOptions) {
    this.options = resolveRedisMembershipOptions(options);
    if (typeof deps.nodeId !== 'string' || !/^[\w.:@-]{1,128}$/.test(deps.nodeId)) {
      throw validationError('nodeId', 'must be 1 to 128 letters, digits and _ . : @ -', {
        value: String(deps.nodeId),
      });
    }
    this.nodeId = deps.nodeId;
    this.#redis = deps.redis;
    this.#clock = deps.clock;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'membership' });
    this.#keys = [`${deps.prefix}nodes:beats`, `${deps.prefix}nodes`, `${deps.prefix}nodes:tick`];
    this.#lockPrefix = `${deps.prefix}nodes:sweep:`;
    const { heartbeatMs, deadAfterMs, sweepIntervalMs } = this.options;
    this.#quietMs = Math.min(2 * heartbeatMs, deadAfterMs);
    this.#lockMs = Math.max(3 * sweepIntervalMs, 1000);
  }

  /** The first heartbeat is awaited: `COORDINATION_UNAVAILABLE` when Redis cannot be reached now. */
  async join(info: { address: string | null; startedAt: number }, stats: () => NodeStats): Promise<void> {
    const { address, startedAt } = info;
    this.#beatTimer?.cancel();
    this.#joined = {
      json: (s) =>
        JSON.stringify({
          address,
          startedAt,
          runsInFlight: s.runsInFlight,
          liveInstances: s.liveInstances,
          threadsHeld: s.threadsHeld,
        }),
      stats,
    };
    try {
      await this.#beat(false);
    } catch (err) {
      this.#joined = undefined;
      throw err;
    }
    this.#scheduleBeat();
    this.#log.info({ nodeId: this.nodeId, ...this.options }, 'joined the cluster');
  }

  async nodes(): Promise<NodeInfo[]> {
    const reply = (await MEMBERSHIP.run(this.#redis, this.#keys, [
      'list',
      this.#quietMs,
      this.options.deadAfterMs,
    ])) as string[];
    return parseEntries(reply).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  watch(sweep: (deadNodeId: string, info: NodeInfo) => Promise<void>): () => void {
    const watch: Watch = {
      sweep,
      timer: undefined,
      checking: false,
      stopped: false,
      failing: false,
      sweeping: new Map(),
    };
    this.#watches.add(watch);
    this.#scheduleCheck(watch);
    return () => this.#stopWatch(watch);
  }

  /** Also stops this node's watchers: a node going away sweeps no one. */
  async leave(): Promise<void> {
    const joined = this.#joined !== undefined;
    this.#joined = undefined;
    this.#beatTimer?.cancel();
    this.#beatTimer = undefined;
    for (const watch of this.#watches) this.#stopWatch(watch);
    // A beat in flight must not write the node back after it left.
    await this.#beating;
    await MEMBERSHIP.run(this.#redis, this.#keys, ['leave', this.#quietMs, this.nodeId]);
    if (joined) this.#log.info({ nodeId: this.nodeId }, 'left the cluster');
  }

  #scheduleBeat(): void {
    if (this.#joined === undefined) return;
    this.#beatTimer = this.#clock.setTimeout(() => {
      this.#scheduleBeat();
      // One beat at a time: a slow Redis is not sent a second one while the first waits.
      if (this.#beating !== undefined) return;
      this.#beating = this.#beat(true).finally(() => (this.#beating = undefined));
    }, this.options.heartbeatMs);
  }

  /** One heartbeat; with `quiet`, failures are logged (once per outage) instead of thrown. */
  async #beat(quiet: boolean): Promise<void> {
    const joined = this.#joined;
    if (joined === undefined) return;
    let stats: NodeStats;
    try {
      stats = joined.stats();
    } catch (err) {
      this.#log.warn({ err }, 'the node stats could not be read: heartbeat sent with zeros');
      stats = { runsInFlight: 0, liveInstances: 0, threadsHeld: 0 };
    }
    try {
      const reply = (await MEMBERSHIP.run(this.#redis, this.#keys, [
        'beat',
        this.#quietMs,
        this.nodeId,
        joined.json(stats),
      ])) as [string, number];
      if (this.#beatFailing) {
        this.#beatFailing = false;
        this.#log.info('heartbeat resumed: Redis reached again');
      }
      if (quiet && reply[1] === 0 && this.#joined !== undefined) {
        this.#log.warn(
          { nodeId: this.nodeId },
          'this node had been declared dead by the cluster (no heartbeat for deadAfterMs) and is listed again; its runs were recovered elsewhere',
        );
      }
    } catch (err) {
      if (!quiet) throw err;
      if (!this.#beatFailing) {
        this.#beatFailing = true;
        this.#log.warn({ err }, 'heartbeat failed: Redis cannot be reached, retrying every heartbeatMs');
      }
    }
  }

  #stopWatch(watch: Watch): void {
    watch.stopped = true;
    watch.timer?.cancel();
    this.#watches.delete(watch);
  }

  #scheduleCheck(watch: Watch): void {
    if (watch.stopped) return;
    watch.timer = this.#clock.setTimeout(() => {
      this.#scheduleCheck(watch);
      if (watch.checking) return;
      watch.checking = true;
      void this.#check(watch).finally(() => (watch.checking = false));
    }, this.options.sweepIntervalMs);
  }

  /** One check: renews the locks of sweeps under way, then claims and starts the sweeps due. Never throws. */
  async #check(watch: Watch): Promise<void> {
    try {
      for (const [id, sweeping] of watch.sweeping) {
        if (sweeping.done) await this.#forget(watch, id, sweeping);
        else await this.#run(id, ['renew', this.#quietMs, sweeping.token, this.#lockMs]);
      }
      if (watch.stopped) return;
      const { deadAfterMs } = this.options;
      const dead = parseEntries(
        (await MEMBERSHIP.run(this.#redis, this.#keys, [
          'dead',
          this.#quietMs,
          deadAfterMs,
          this.nodeId,
        ])) as string[],
      );
      for (const node of dead) {
        if (watch.stopped) return;
        if (watch.sweeping.has(node.id)) continue;
        const token = randomBytes(9).toString('base64url');
        const claim = (await this.#run(node.id, [
          'claim',
          this.#quietMs,
          deadAfterMs,
          node.id,
          token,
          this.#lockMs,
        ])) as string[];
        const [at, json] = claim;
        // Another node holds its sweep, or it beat again since the list was read.
        if (at === undefined || json === undefined) continue;
        const sweeping: Sweeping = { token, done: false };
        watch.sweeping.set(node.id, sweeping);
        void this.#sweep(watch, parseNode(node.id, at, json), sweeping);
      }
      if (watch.failing) {
        watch.failing = false;
        this.#log.info('dead-node checks resumed: Redis reached again');
      }
    } catch (err) {
      if (!watch.failing) {
        watch.failing = true;
        this.#log.warn(
          { err },
          'the dead-node check failed: Redis cannot be reached, retrying every sweepIntervalMs',
        );
      }
    }
  }

  async #sweep(watch: Watch, node: NodeInfo, sweeping: Sweeping): Promise<void> {
    const log = this.#log.child({ deadNode: node.id });
    log.warn(
      { heartbeatAt: node.heartbeatAt, address: node.address },
      'a node stopped heartbeating: sweeping it',
    );
    try {
      await watch.sweep(node.id, node);
    } catch (err) {
      log.error({ err }, 'sweeping a dead node failed: it is swept again at the next check');
      watch.sweeping.delete(node.id);
      try {
        await this.#run(node.id, ['release', this.#quietMs, sweeping.token]);
      } catch {
        // The lock expires by itself lockMs later, and the sweep is retried then.
      }
      return;
    }
    sweeping.done = true;
    try {
      await this.#forget(watch, node.id, sweeping);
    } catch (err) {
      log.warn(
        { err },
        'a swept node could not be forgotten yet: Redis cannot be reached, retried at the next check',
      );
    }
  }

  /** Forgets a swept node; throws (and keeps it owed) when Redis cannot be reached. */
  async #forget(watch: Watch, id: string, sweeping: Sweeping): Promise<void> {
    const outcome = await this.#run(id, [
      'forget',
      this.#quietMs,
      this.options.deadAfterMs,
      id,
      sweeping.token,
    ]);
    watch.sweeping.delete(id);
    if (outcome === 1) this.#log.info({ deadNode: id }, 'a dead node was swept and forgotten');
    else if (outcome === 2)
      this.#log.warn({ deadNode: id }, 'a swept node heartbeats again: it stays listed');
    else this.#log.warn({ deadNode: id }, 'the sweep lock of a dead node expired before its sweep ended');
  }

  #run(id: string, args: (string | number)[]): Promise<unknown> {
    return MEMBERSHIP.run(this.#redis, [...this.#keys, `${this.#lockPrefix}${id}`], args);
  }
}

/** Parses `[id, heartbeatAt, json]…` as the scripts answer them. */
function parseEntries(reply: readonly string[]): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    nodes.push(parseNode(reply[i] as string, reply[i + 1] as string, reply[i + 2] as string));
  }
  return nodes;
}

function parseNode(id: string, heartbeatAt: string, json: string): NodeInfo {
  let data: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed === 'object' && parsed !== null) data = parsed as Record<string, unknown>;
  } catch {
    // A value this code did not write: the node is listed with what is known.
  }
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    id,
    address: typeof data['address'] === 'string' ? data['address'] : null,
    startedAt: num(data['startedAt']),
    heartbeatAt: Number(heartbeatAt),
    runsInFlight: num(data['runsInFlight']),
    liveInstances: num(data['liveInstances']),
    threadsHeld: num(data['threadsHeld']),
  };
}
