/**
 * The governance ledger of a cluster, in Redis: one count of runs in flight, runs and tokens per
 * minute, and one account per budget window, shared by every node. Each admission and each
 * reservation is one atomic script (governance-scripts.ts) and one round trip; settlements and
 * releases are sent without waiting (deliveries.ts), in the order the run made them, and are
 * batched with whatever else the node sends in the same tick (ioredis auto-pipelining).
 *
 * A run's place and reservations are held under a hold id with an expiry that this node pushes
 * forward every `renewIntervalMs` while the run lives, so when a node dies its holds free
 * themselves `holdTtlMs` later. A budget window is created in Redis by the first node that needs
 * it, from the run store's sum (`costSince`), and only if it does not exist yet: nodes that start
 * using a window at once all end up reading the one account. Windows are keyed by their start, so
 * a new day or month is a new key, and old ones expire a day after they end.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import { AgentPoolError } from '../../core/errors.ts';
import { type Logger, silentLogger } from '../../core/logger.ts';
import { OldestKey } from '../../core/oldest-key.ts';
import { intOption, rejectUnknownKeys } from '../../core/options.ts';
import type { BudgetLimits } from '../../store/project-ports.ts';
import {
  type AdmissionQuotas,
  type BudgetWindowKind,
  type GovernanceLedger,
  type HeldWindows,
  type LedgerSample,
  type ProjectWindows,
  type QuotaUse,
  type RunHold,
  type SpendSource,
  windowBounds,
  type WindowState,
} from '../governance-ledger.ts';
import { budgetRefusal, concurrencyRefusal, rateRefusal } from '../governance-refusals.ts';
import { Deliveries } from './deliveries.ts';
import { BUDGETS, QUOTAS } from './governance-scripts.ts';
import { LuaScript, redisFailure } from './lua-script.ts';

/** Options of the Redis governance ledger. */
export interface RedisGovernanceLedgerOptions {
  /**
   * How long a run's place and reservations outlive the last renewal by their node: a dead node's
   * runs stop counting this long after it died. Longer than any pause a live node may take.
   * @default 15000
   */
  holdTtlMs?: number;
  /** How often the node renews its runs' holds (and resends what Redis missed). @default holdTtlMs / 3 */
  renewIntervalMs?: number;
}

/** {@link RedisGovernanceLedgerOptions} with every default applied. */
export interface ResolvedRedisGovernanceLedgerOptions {
  readonly holdTtlMs: number;
  readonly renewIntervalMs: number;
}

/** Applies defaults and rejects bad values by field name (`ledger.holdTtlMs must be …`). */
export function resolveRedisGovernanceLedgerOptions(
  options: RedisGovernanceLedgerOptions = {},
): ResolvedRedisGovernanceLedgerOptions {
  rejectUnknownKeys('ledger.', options, ['holdTtlMs', 'renewIntervalMs']);
  const holdTtlMs = intOption('ledger.holdTtlMs', options.holdTtlMs, 15_000, 1000, 3_600_000);
  const renewIntervalMs = intOption(
    'ledger.renewIntervalMs',
    options.renewIntervalMs,
    Math.floor(holdTtlMs / 3),
    100,
    // Renewing less often than the ttl would let live runs' holds expire.
    Math.max(100, holdTtlMs - 1),
  );
  return { holdTtlMs, renewIntervalMs };
}

/** What the ledger talks to. */
export interface RedisGovernanceLedgerDeps {
  /** A command connection (connection.ts); the ledger does not close it. */
  redis: Redis;
  /** Prefix of every key. */
  prefix: string;
  clock: Clock;
  /** @default silent */
  logger?: Logger;
}

interface RedisHold extends RunHold {
  readonly id: string;
}

/** A live hold this node renews: the sorted sets its id is a member of. */
interface LiveHold {
  readonly project: string;
  readonly agentId: string;
  /** The expiry sets of the windows it reserved in. */
  readonly windows: Set<string>;
}

/** The six keys of a project's daily and monthly windows at one moment. */
interface Held {
  readonly keys: readonly string[];
}

const KINDS = ['daily', 'monthly'] as const;
/** How long a window's keys outlive its end: runs created in it settle into it. */
const GRACE_MS = 86_400_000;
/** Projects whose figures are kept for metrics, and whose prepared windows are remembered. */
const MAX_PROJECTS = 10_000;

/** How long a project's agent-creation section may be held before it frees itself (ms). */
const EXCLUSIVE_TTL_MS = 10_000;
/** How long a create waits for the section before it gives up (ms). */
const EXCLUSIVE_WAIT_MS = 10_000;
/** Deletes the lock only when it still holds this holder's token. */
const UNLOCK = new LuaScript(
  'agentpool-unlock',
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
);

/** Quotas and budgets counted once for every node sharing a Redis (and prefix). */
export class RedisGovernanceLedger implements GovernanceLedger {
  readonly options: ResolvedRedisGovernanceLedgerOptions;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #deliveries: Deliveries;
  /** Holds of this node's runs in flight, renewed by the timer; one per admission, removed at release. */
  readonly #live = new Map<string, LiveHold>();
  /** Window starts known to exist in Redis, per project. */
  readonly #prepared = new Map<string, { daily: number; monthly: number }>();
  readonly #oldestPrepared = new OldestKey(this.#prepared);
  readonly #preparing = new Map<string, Promise<void>>();
  /** What the last answers said of each project, for metrics. */
  readonly #seen = new Map<string, ProjectWindows>();
  readonly #oldestSeen = new OldestKey(this.#seen);
  readonly #node = randomBytes(6).toString('hex');
  #seq = 0;
  #timer: TimerHandle | undefined;
  /** Renewals under way (each one's expiry was fixed when its timer fired). */
  readonly #renewing = new Set<Promise<void>>();
  #closed = false;

  constructor(deps: RedisGovernanceLedgerDeps, options?: RedisGovernanceLedgerOptions) {
    this.options = resolveRedisGovernanceLedgerOptions(options);
    this.#redis = deps.redis;
    this.#prefix = deps.prefix;
    this.#clock = deps.clock;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'governance-ledger' });
    this.#deliveries = new Deliveries(this.#log);
    this.#schedule();
  }

  async take(project: string, agentId: string, quotas: AdmissionQuotas, now: number): Promise<RunHold> {
    const id = `${this.#node}.${(++this.#seq).toString(36)}`;
    const { holdTtlMs } = this.options;
    const pq = quotas.project;
    const aq = quotas.agent;
    const reply = (await QUOTAS.run(
      this.#redis,
      [
        this.#key('running:p', project),
        this.#key('running:a', agentId),
        this.#key('rpm:p', project),
        this.#key('rpm:a', agentId),
        this.#key('tpm:p', project),
      ],
      [
        'take',
        now,
        id,
        now + holdTtlMs,
        2 * holdTtlMs,
        limitArg(pq.maxConcurrentRuns),
        limitArg(aq.maxConcurrentRuns),
        limitArg(pq.runsPerMinute),
        limitArg(aq.runsPerMinute),
        limitArg(pq.tokensPerMinute),
      ],
    )) as [string, string, string?, string?];
    const [verdict, a, b, c] = reply;
    if (verdict === 'places') {
      const scope = a === 'agent' ? 'agent' : 'project';
      throw concurrencyRefusal(scope, (scope === 'agent' ? aq : pq).maxConcurrentRuns ?? 0);
    }
    if (verdict === 'rate') {
      const scope = a === 'agent' ? 'agent' : 'project';
      const quota = b === 'tokensPerMinute' ? 'tokensPerMinute' : 'runsPerMinute';
      const limit =
        quota === 'tokensPerMinute' ? pq.tokensPerMinute : (scope === 'agent' ? aq : pq).runsPerMinute;
      throw rateRefusal(scope, quota, limit ?? 0, Number(c));
    }
    this.#live.set(id, { project, agentId, windows: new Set() });
    const hold: RedisHold = { project, agentId, id };
    return hold;
  }

  uncount(hold: RunHold, at: number): void {
    const keys = [this.#key('rpm:p', hold.project), this.#key('rpm:a', hold.agentId)];
    this.#send('an uncount', QUOTAS, keys, ['uncount', at]);
  }

  release(hold: RunHold): void {
    const { id } = hold as RedisHold;
    this.#live.delete(id);
    const keys = [this.#key('running:p', hold.project), this.#key('running:a', hold.agentId)];
    this.#send('a release', QUOTAS, keys, ['release', id]);
  }

  addTokens(project: string, tokens: number, now: number): void {
    if (!(tokens > 0)) return;
    this.#send('a token count', QUOTAS, [this.#key('tpm:p', project)], ['tokens', now, Math.ceil(tokens)]);
  }

  async usage(project: string, now: number): Promise<QuotaUse> {
    const keys = [this.#key('running:p', project), this.#key('rpm:p', project), this.#key('tpm:p', project)];
    const [running, runs, tokens] = (await QUOTAS.run(this.#redis, keys, ['usage', now])) as [
      number,
      string,
      string,
    ];
    return { running: Number(running), runsLastMinute: Number(runs), tokensLastMinute: Number(tokens) };
  }

  prepare(project: string, now: number, source: SpendSource): Promise<void> | undefined {
    const daily = windowBounds('daily', now).start;
    const monthly = windowBounds('monthly', now).start;
    const known = this.#prepared.get(project);
    if (known !== undefined && known.daily === daily && known.monthly === monthly) return undefined;
    const flight = `${project}|${daily}|${monthly}`;
    let loading = this.#preparing.get(flight);
    if (loading === undefined) {
      loading = this.#load(project, now, source).finally(() => this.#preparing.delete(flight));
      this.#preparing.set(flight, loading);
    }
    return loading;
  }

  async reserve(
    hold: RunHold,
    limits: BudgetLimits,
    usd: number,
    now: number,
    source: SpendSource,
  ): Promise<HeldWindows> {
    const { id, project } = hold as RedisHold;
    const keys = this.#windowKeys(project, now);
    for (let attempt = 0; attempt < 2; attempt++) {
      const reply = (await BUDGETS.run(this.#redis, keys, [
        'reserve',
        now,
        id,
        now + this.options.holdTtlMs,
        String(usd),
        limitArg(limits.dailyUsd),
        limitArg(limits.monthlyUsd),
        GRACE_MS,
      ])) as string[];
      const [verdict] = reply;
      if (verdict === 'missing') {
        // Forgotten by another node, or lost by Redis: read it from the store again.
        this.#prepared.delete(project);
        await this.prepare(project, now, source);
        continue;
      }
      if (verdict === 'exhausted') {
        const kind: BudgetWindowKind = reply[1] === 'monthly' ? 'monthly' : 'daily';
        const w = state(kind, now, reply[2], reply[3]);
        throw budgetRefusal(
          project,
          w,
          (kind === 'daily' ? limits.dailyUsd : limits.monthlyUsd) ?? 0,
          usd,
          now,
        );
      }
      const live = this.#live.get(id);
      if (live !== undefined && usd > 0)
        for (let i = 2; i < keys.length; i += 3) live.windows.add(keys[i] as string);
      this.#note(project, {
        daily: state('daily', now, reply[1], reply[2]),
        monthly: state('monthly', now, reply[3], reply[4]),
      });
      const held: Held = { keys };
      return held as unknown as HeldWindows;
    }
    throw new AgentPoolError(
      'INTERNAL_ERROR',
      `the budget windows of ${project} vanished twice while reserving`,
    );
  }

  unreserve(hold: RunHold, windows: HeldWindows, usd: number): void {
    if (!(usd > 0)) return;
    const { keys } = windows as unknown as Held;
    this.#send('an unreserve', BUDGETS, keys, ['unreserve', (hold as RedisHold).id, String(usd), GRACE_MS]);
  }

  charge(project: string, usd: number, at: number): void {
    if (!(usd > 0)) return;
    const keys = KINDS.map((kind) => this.#windowKey(project, kind, windowBounds(kind, at).start));
    this.#send('a charge', BUDGETS, keys, ['charge', String(usd), GRACE_MS]);
  }

  async windows(project: string, now: number, source: SpendSource): Promise<ProjectWindows> {
    let windows = await this.#readWindows(project, now);
    if (windows.daily === undefined || windows.monthly === undefined) {
      this.#prepared.delete(project);
      await this.prepare(project, now, source);
      windows = await this.#readWindows(project, now);
    }
    this.#note(project, windows);
    return windows;
  }

  /**
   * Per project: this node's runs in flight (a gauge each node reports, so the cluster's is their
   * sum), and the windows as this node last read them (the cluster's: every node reports the same).
   */
  samples(now: number): LedgerSample[] {
    const running = new Map<string, number>();
    for (const hold of this.#live.values()) running.set(hold.project, (running.get(hold.project) ?? 0) + 1);
    const projects = new Set([...this.#seen.keys(), ...running.keys()]);
    return [...projects].map((project) => {
      const seen = this.#seen.get(project);
      return {
        project,
        running: running.get(project) ?? 0,
        ...(seen?.daily !== undefined && now < seen.daily.end && { daily: seen.daily }),
        ...(seen?.monthly !== undefined && now < seen.monthly.end && { monthly: seen.monthly }),
      };
    });
  }

  forget(project: string): void {
    this.#prepared.delete(project);
    this.#seen.delete(project);
    const keys = [
      this.#key('running:p', project),
      this.#key('rpm:p', project),
      this.#key('tpm:p', project),
      ...this.#windowKeys(project, this.#clock.now()),
    ];
    this.#deliveries.send('a forget', () => this.#redis.del(...keys));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#renewing);
    await this.#deliveries.flush();
  }

  /** Renews this node's holds now (the timer does it every `renewIntervalMs`) and resends what Redis missed. */
  async renew(): Promise<void> {
    this.#deliveries.retry();
    if (this.#live.size === 0) return;
    const expires = this.#clock.now() + this.options.holdTtlMs;
    const pipeline = this.#redis.pipeline();
    const ttl = 2 * this.options.holdTtlMs;
    /** Indexes of the place renewals in the pipeline's answers. */
    const placeAt: number[] = [];
    let n = 0;
    for (const [id, hold] of this.#live) {
      for (const place of [this.#key('running:p', hold.project), this.#key('running:a', hold.agentId)]) {
        pipeline.zadd(place, 'XX', 'CH', expires, id).pexpire(place, ttl);
        placeAt.push(n);
        n += 2;
      }
      for (const expiry of hold.windows) {
        pipeline.zadd(expiry, 'XX', 'CH', expires, id);
        n++;
      }
    }
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed !== undefined) throw failed[0];
      // A place nobody renewed (CH = 0) had expired: this node was away longer than holdTtlMs.
      const lost = placeAt.filter((i) => results[i]?.[1] === 0).length;
      if (lost > 0) this.#log.warn({ lost }, 'run places had expired before this node renewed them');
    } catch (err) {
      this.#log.warn({ err: redisFailure(err, 'a renewal') }, 'could not renew the holds of runs in flight');
    }
  }

  async exclusive<T>(project: string, fn: () => Promise<T>): Promise<T> {
    const key = `${this.#prefix}gov:agents:${project}:lock`;
    const token = `${this.#node}:${++this.#seq}`;
    const deadline = Date.now() + EXCLUSIVE_WAIT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      let taken: string | null;
      try {
        taken = await this.#redis.set(key, token, 'PX', EXCLUSIVE_TTL_MS, 'NX');
      } catch (err) {
        throw redisFailure(err, 'the agents lock');
      }
      if (taken !== null) break;
      if (Date.now() >= deadline) {
        throw new AgentPoolError(
          'COORDINATION_UNAVAILABLE',
          `project ${project}'s agent creation stayed locked for ${EXCLUSIVE_WAIT_MS} ms`,
          { dependency: 'redis', retryAfterSeconds: 1 },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    try {
      return await fn();
    } finally {
      // Only ours: a section that outlived its ttl must not free the next holder's.
      await UNLOCK.run(this.#redis, [key], [token]).catch((err: unknown) =>
        this.#log.warn({ err, project }, 'the agents lock was not released: it expires by itself'),
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    await Promise.all(this.#renewing);
    this.#deliveries.retry();
    await this.#deliveries.flush();
    this.#deliveries.abandon();
  }

  async #load(project: string, now: number, source: SpendSource): Promise<void> {
    const windows = KINDS.map((kind) => ({ kind, ...windowBounds(kind, now) }));
    const accounts = windows.map((w) => this.#windowKey(project, w.kind, w.start));
    let exists: number[];
    try {
      exists = await Promise.all(accounts.map((key) => this.#redis.exists(key)));
    } catch (err) {
      throw redisFailure(err, 'a budget window check');
    }
    await Promise.all(
      windows.map(async (w, i) => {
        if (exists[i] === 1) return;
        const spent = await source.costSince(project, w.start);
        await BUDGETS.run(
          this.#redis,
          [accounts[i] as string],
          ['init', String(spent), w.end, now, GRACE_MS],
        );
      }),
    );
    if (this.#prepared.size >= MAX_PROJECTS && !this.#prepared.has(project)) this.#oldestPrepared.evict();
    this.#prepared.set(project, { daily: windows[0]?.start ?? 0, monthly: windows[1]?.start ?? 0 });
  }

  async #readWindows(project: string, now: number): Promise<ProjectWindows> {
    const reply = (await BUDGETS.run(this.#redis, this.#windowKeys(project, now), [
      'windows',
      now,
      GRACE_MS,
    ])) as string[][];
    const out: { daily?: WindowState; monthly?: WindowState } = {};
    KINDS.forEach((kind, i) => {
      const w = reply[i];
      if (w !== undefined && w.length > 0) out[kind] = state(kind, now, w[0], w[1]);
    });
    return out;
  }

  #send(
    what: string,
    script: typeof QUOTAS,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): void {
    this.#deliveries.send(what, () => script.run(this.#redis, keys, args));
  }

  #note(project: string, seen: ProjectWindows): void {
    const before = this.#seen.get(project);
    if (before === undefined && this.#seen.size >= MAX_PROJECTS) this.#oldestSeen.evict();
    this.#seen.set(project, { ...before, ...seen });
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#clock.setTimeout(() => {
      // The next one is due on time even if Redis is slow to answer this one.
      this.#schedule();
      const renewing = this.renew();
      this.#renewing.add(renewing);
      void renewing.finally(() => this.#renewing.delete(renewing));
    }, this.options.renewIntervalMs);
  }

  #key(kind: string, id: string): string {
    return `${this.#prefix}gov:${kind}:${id}`;
  }

  #windowKey(project: string, kind: BudgetWindowKind, start: number): string {
    return `${this.#prefix}gov:budget:${project}:${kind}:${start}`;
  }

  /** The account, holds and expiry keys of the project's daily then monthly window at `now`. */
  #windowKeys(project: string, now: number): string[] {
    return KINDS.flatMap((kind) => {
      const account = this.#windowKey(project, kind, windowBounds(kind, now).start);
      return [account, `${account}:holds`, `${account}:expiry`];
    });
  }
}

function limitArg(limit: number | undefined): string {
  return limit === undefined ? '' : String(limit);
}

function state(kind: BudgetWindowKind, now: number, spent: unknown, reserved: unknown): WindowState {
  const { start, end } = windowBounds(kind, now);
  return { kind, start, end, spent: Number(spent), reserved: Number(reserved) };
}
