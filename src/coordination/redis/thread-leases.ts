/**
 * Thread leases shared by every node of a cluster, in Redis: one run per thread across all nodes,
 * with a fencing token per grant that the run store checks (store/ports.ts, "Fencing").
 *
 * - A lease is the hash `{prefix}thread:{threadId}:lease` (`run`, `node`, `token`) with PX
 *   leaseTtlMs; the holder's node renews it every renewIntervalMs. A dead node's lease expires,
 *   and a node that finds its lease gone (it paused longer than the ttl) aborts the run with
 *   `LEASE_LOST`; the store's fence check is what really keeps the late run's writes out.
 * - The token is an INCR of `{prefix}thread:{threadId}:fence`, seeded from Redis `TIME` in ms
 *   when the key is missing, so it is strictly increasing per thread and never reused even after
 *   the key expired (30 days after the thread's last claim) or Redis lost its data.
 * - `enqueue` waiters sit in the sorted set `…:queue` in arrival order (scores from `…:tickets`),
 *   each with a liveness key `…:waiter:{runId}` its node refreshes on every poll; a free thread is
 *   handed, in the same script as the release, to the first waiter whose liveness key exists.
 *   Its node hears of it by pub/sub on `{prefix}threads` or, if that message is lost, at its next
 *   poll (every pollMs); a lease expiring with a dead node publishes nothing, so polls also take it.
 * - `interrupt` removes every waiter (marking each `!{by}` so its node rejects it even without the
 *   pub/sub message), queues itself alone, marks the lease `interruptedBy` and tells the holder's
 *   node to abort the run (or its next renewal sees the mark). It gets the thread at the release,
 *   or when the lease of a dead holder expires.
 * All keys of a thread share the `{threadId}` hash tag (one Redis Cluster slot).
 */
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import { coordinationUnavailable } from './connection.ts';
import { AgentPoolError } from '../../core/errors.ts';
import { type Logger, silentLogger } from '../../core/logger.ts';
import { intOption, rejectUnknownKeys } from '../../core/options.ts';
import type { GateEntrant, MultitaskStrategy } from '../thread-gate.ts';
import { nodeClosing, type ThreadLeases } from '../thread-leases.ts';
import { LuaScript } from './lua-script.ts';

/** Options of the Redis thread leases. */
export interface RedisThreadLeasesOptions {
  /**
   * How long a lease (and a waiter's place) outlives the last renewal by its node: a dead node's
   * threads are free this long after it died. Longer than any pause a live node may take.
   * @default 15000
   */
  leaseTtlMs?: number;
  /** How often the node renews the leases it holds. @default leaseTtlMs / 3 */
  renewIntervalMs?: number;
  /**
   * How often a waiting claim asks Redis whether the thread is its (pub/sub wakes it sooner; a
   * poll also keeps the waiter alive). @default 500, or leaseTtlMs / 3 when that is shorter
   */
  pollMs?: number;
  /** Runs waiting on one thread at most; more fail with `THREAD_BUSY`. @default 100 */
  maxQueue?: number;
}

/** {@link RedisThreadLeasesOptions} with every default applied. */
export interface ResolvedRedisThreadLeasesOptions {
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  readonly pollMs: number;
  readonly maxQueue: number;
}

/** Applies defaults and rejects bad values by field name (`threadLeases.leaseTtlMs must be …`). */
export function resolveRedisThreadLeasesOptions(
  options: RedisThreadLeasesOptions = {},
): ResolvedRedisThreadLeasesOptions {
  rejectUnknownKeys('threadLeases.', options, ['leaseTtlMs', 'renewIntervalMs', 'pollMs', 'maxQueue']);
  const leaseTtlMs = intOption('threadLeases.leaseTtlMs', options.leaseTtlMs, 15_000, 100, 3_600_000);
  // Renewing or polling less often than the ttl would let live leases and waiters expire.
  const below = Math.max(10, leaseTtlMs - 1);
  const renewIntervalMs = intOption(
    'threadLeases.renewIntervalMs',
    options.renewIntervalMs,
    Math.floor(leaseTtlMs / 3),
    10,
    below,
  );
  const pollMs = intOption(
    'threadLeases.pollMs',
    options.pollMs,
    Math.min(500, Math.floor(leaseTtlMs / 3)),
    10,
    below,
  );
  const maxQueue = intOption('threadLeases.maxQueue', options.maxQueue, 100, 1, 100_000);
  return { leaseTtlMs, renewIntervalMs, pollMs, maxQueue };
}

/** What the leases talk to. */
export interface RedisThreadLeasesDeps {
  /** A command connection (connection.ts); the leases do not close it. */
  redis: Redis;
  /**
   * A connection in subscribe mode, shared with the node's other components: the leases subscribe
   * to their one channel, listen to its messages only, unsubscribe it at close and never close the
   * connection. One per node and prefix.
   */
  subscriber: Redis;
  /** Prefix of every key and of the channel. */
  prefix: string;
  /** This node's id, stored in its leases and waiters. */
  nodeId: string;
  clock: Clock;
  /** @default silent */
  logger?: Logger;
}

/**
 * How long the fence outlives the last claim of its thread. A fence found missing restarts from
 * Redis's clock in ms, above every earlier token (a thread takes far fewer than one claim per ms),
 * so the key only has to bridge clock adjustments of the Redis host; a short life keeps Redis's
 * memory to the threads of the last minutes (about 136 bytes each) rather than of every thread.
 */
const FENCE_TTL_MS = 600_000;

/**
 * KEYS: lease, fence, queue, tickets. ARGV: mode, base, channel, leaseTtlMs, threadId, runId,
 * nodeId, then per mode:
 * - claim (strategy, maxQueue): {'granted', token} | {'queued'} | {'busy', holder} | {'full', holder, n};
 * - poll: {'granted', token} | {'waiting'} | {'interrupted', by};
 * - leave: 1 when the run held the lease (now given on), else 0;
 * - release: 1 when the run held the lease, else 0;
 * - renew: {'ok', interruptedBy | ''} | {'lost', holder | ''}.
 * Published on the channel (JSON): {e:'grant', t, run, node, token}, {e:'free', t},
 * {e:'interrupt', t, by, holder, removed: [runIds]}.
 */
const THREAD_LEASE = new LuaScript(
  'the thread lease script',
  `
local lease, fence, queue, tickets = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, base, channel = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])
local thread, run, node = ARGV[5], ARGV[6], ARGV[7]

local function waiter_key(r) return base .. 'waiter:' .. r end

-- A new token: one more than the last, or now in ms if the fence is gone.
local function grant(r, n)
  if redis.call('EXISTS', fence) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', fence, string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
  end
  local token = string.format('%d', redis.call('INCR', fence))
  redis.call('PEXPIRE', fence, ${FENCE_TTL_MS})
  redis.call('DEL', lease)
  redis.call('HSET', lease, 'run', r, 'node', n, 'token', token)
  redis.call('PEXPIRE', lease, ttl)
  return token
end

-- The first waiter whose node is alive; dead ones are dropped on the way.
local function live_head()
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local w = redis.call('GET', waiter_key(head))
    if w and string.sub(w, 1, 1) ~= '!' then return head, w end
    redis.call('ZREM', queue, head)
  end
end

-- A free thread goes to the first live waiter, whose node hears of it.
local function grant_next()
  if redis.call('EXISTS', lease) == 1 then return nil end
  local head, wnode = live_head()
  if not head then return nil end
  redis.call('ZREM', queue, head)
  redis.call('DEL', waiter_key(head))
  local token = grant(head, wnode)
  redis.call('PUBLISH', channel, cjson.encode({ e = 'grant', t = thread, run = head, node = wnode, token = token }))
  return head, token
end

local function enqueue(r)
  redis.call('ZADD', queue, redis.call('INCR', tickets), r)
  redis.call('SET', waiter_key(r), node, 'PX', ttl)
  redis.call('PEXPIRE', queue, ttl)
  redis.call('PEXPIRE', tickets, ttl)
end

local function free()
  redis.call('DEL', lease)
  if not grant_next() then redis.call('PUBLISH', channel, cjson.encode({ e = 'free', t = thread })) end
end

if mode == 'claim' then
  local strategy, max_queue = ARGV[8], tonumber(ARGV[9])
  if strategy == 'interrupt' then
    local removed = redis.call('ZRANGE', queue, 0, -1)
    for _, r in ipairs(removed) do redis.call('SET', waiter_key(r), '!' .. run, 'PX', ttl) end
    redis.call('DEL', queue)
    local holder = redis.call('HGET', lease, 'run')
    if holder then
      redis.call('HSET', lease, 'interruptedBy', run)
      enqueue(run)
    end
    if #removed > 0 or holder then
      local msg = { e = 'interrupt', t = thread, by = run, holder = holder or '', removed = removed }
      redis.call('PUBLISH', channel, cjson.encode(msg))
    end
    if holder then return { 'queued' } end
    return { 'granted', grant(run, node) }
  end
  grant_next()
  local holder = redis.call('HGET', lease, 'run')
  if not holder then return { 'granted', grant(run, node) } end
  if strategy == 'reject' then return { 'busy', holder } end
  local n = redis.call('ZCARD', queue)
  if n >= max_queue then
    -- Count only live waiters before refusing.
    for _, r in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
      local w = redis.call('GET', waiter_key(r))
      if not w or string.sub(w, 1, 1) == '!' then redis.call('ZREM', queue, r) end
    end
    n = redis.call('ZCARD', queue)
    if n >= max_queue then return { 'full', holder, n } end
  end
  enqueue(run)
  return { 'queued' }
elseif mode == 'poll' then
  if redis.call('HGET', lease, 'run') == run then return { 'granted', redis.call('HGET', lease, 'token') } end
  if not redis.call('ZSCORE', queue, run) then
    local w = redis.call('GET', waiter_key(run))
    if w and string.sub(w, 1, 1) == '!' then
      redis.call('DEL', waiter_key(run))
      return { 'interrupted', string.sub(w, 2) }
    end
    -- Dropped as dead while this node was away longer than the ttl: back in line, at the end.
    enqueue(run)
  else
    redis.call('SET', waiter_key(run), node, 'PX', ttl)
    redis.call('PEXPIRE', queue, ttl)
    redis.call('PEXPIRE', tickets, ttl)
  end
  local head, token = grant_next()
  if head == run then return { 'granted', token } end
  return { 'waiting' }
elseif mode == 'leave' then
  redis.call('ZREM', queue, run)
  redis.call('DEL', waiter_key(run))
  if redis.call('HGET', lease, 'run') == run then
    free()
    return 1
  end
  return 0
elseif mode == 'release' then
  if redis.call('HGET', lease, 'run') ~= run then return 0 end
  free()
  return 1
elseif mode == 'renew' then
  local holder = redis.call('HGET', lease, 'run')
  if holder ~= run then return { 'lost', holder or '' } end
  redis.call('PEXPIRE', lease, ttl)
  return { 'ok', redis.call('HGET', lease, 'interruptedBy') or '' }
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);

/** A claim this node waits on. */
interface Waiter {
  readonly threadId: string;
  readonly entrant: GateEntrant;
  readonly resolve: (token: number) => void;
  readonly reject: (err: unknown) => void;
  readonly onAbort: () => void;
  /** Redis put it in the queue: it polls from now on. */
  queued: boolean;
  /** A poll of it is under way (polls never pile up behind a slow Redis). */
  polling: boolean;
}

/** A lease this node holds and renews. */
interface Holder {
  readonly entrant: GateEntrant;
  readonly token: number;
}

/** A message on the channel, as the script publishes it. */
interface LeaseMessage {
  e?: unknown;
  t?: unknown;
  run?: unknown;
  node?: unknown;
  token?: unknown;
  by?: unknown;
  holder?: unknown;
  removed?: unknown;
}

/** Thread leases with fencing tokens, shared by every node on one Redis (and prefix). */
export class RedisThreadLeases implements ThreadLeases {
  readonly options: ResolvedRedisThreadLeasesOptions;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #nodeId: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Claims waiting, by thread and run; bounded by the runs in flight on this node. */
  readonly #waiting = new Map<string, Waiter>();
  /** Leases held, by thread. */
  readonly #held = new Map<string, Holder>();
  /** Releases, leaves and renewals under way, awaited by close(). */
  readonly #pending = new Set<Promise<unknown>>();
  /** The subscription to the channel: true once made, false when it failed (retried at renewals). */
  #subscribed: Promise<boolean>;
  #listening: boolean | undefined;
  #renewTimer: TimerHandle | undefined;
  #pollTimer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: RedisThreadLeasesDeps, options?: RedisThreadLeasesOptions) {
    this.options = resolveRedisThreadLeasesOptions(options);
    this.#redis = deps.redis;
    this.#subscriber = deps.subscriber;
    this.#prefix = deps.prefix;
    this.#channel = `${deps.prefix}threads`;
    this.#nodeId = deps.nodeId;
    this.#clock = deps.clock;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'thread-leases' });
    this.#subscriber.on('message', this.#onMessage);
    this.#subscribed = this.#subscribe();
    this.#scheduleRenew();
  }

  claim(threadId: string, entrant: GateEntrant, strategy: MultitaskStrategy): Promise<number | undefined> {
    if (this.#closed) return Promise.reject(nodeClosing());
    const signal = entrant.controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason as unknown);
    const key = waiterKey(threadId, entrant.runId);
    if (this.#waiting.has(key) || this.#held.get(threadId)?.entrant.runId === entrant.runId) {
      return Promise.reject(
        new AgentPoolError('INTERNAL_ERROR', `run ${entrant.runId} claimed thread ${threadId} twice`),
      );
    }
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        threadId,
        entrant,
        resolve,
        reject,
        onAbort: () => this.#abandon(waiter),
        queued: false,
        polling: false,
      };
      // Known before Redis answers: the grant of a queued claim may arrive before the answer.
      this.#waiting.set(key, waiter);
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      void this.#enter(waiter, strategy);
    });
  }

  holds(threadId: string, runId: string): boolean {
    return this.#held.get(threadId)?.entrant.runId === runId;
  }

  readonly fenced = true;

  async holder(threadId: string): Promise<string | undefined> {
    try {
      const run = await this.#redis.hget(`${this.#keys(threadId)}lease`, 'run');
      return run ?? undefined;
    } catch (err) {
      throw coordinationUnavailable(err);
    }
  }

  release(threadId: string, entrant: GateEntrant): void {
    const holder = this.#held.get(threadId);
    if (holder === undefined || holder.entrant !== entrant) return;
    this.#held.delete(threadId);
    this.#send('release', threadId, entrant.runId);
  }

  get held(): number {
    return this.#held.size;
  }

  /**
   * Stops the timers, leaves the channel, rejects the waiting claims with `RUN_INTERRUPTED` ("the
   * node is closing"), aborts the runs holding a lease with the same error and gives their leases
   * back (best effort: what Redis does not get expires).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#renewTimer?.cancel();
    this.#pollTimer?.cancel();
    this.#subscriber.off('message', this.#onMessage);
    try {
      const reason = nodeClosing();
      for (const waiter of [...this.#waiting.values()]) {
        if (!this.#settle(waiter)) continue;
        this.#send('leave', waiter.threadId, waiter.entrant.runId);
        waiter.reject(reason);
      }
      for (const [threadId, holder] of [...this.#held]) {
        this.#held.delete(threadId);
        if (!holder.entrant.controller.signal.aborted) holder.entrant.controller.abort(reason);
        this.#send('release', threadId, holder.entrant.runId);
      }
    } finally {
      if (await this.#subscribed.catch(() => false)) {
        await this.#subscriber.unsubscribe(this.#channel).catch(() => undefined);
      }
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    }
  }

  /** Runs the claim script and acts on its answer. */
  async #enter(waiter: Waiter, strategy: MultitaskStrategy): Promise<void> {
    const { threadId, entrant } = waiter;
    let reply: string[];
    try {
      // A grant published before the subscription would be heard only at the next poll.
      await this.#subscribed;
      reply = (await this.#script('claim', threadId, entrant.runId, [
        strategy,
        this.options.maxQueue,
      ])) as string[];
    } catch (err) {
      if (this.#settle(waiter)) {
        // The script may have run before the answer was lost: whatever it took expires otherwise.
        this.#send('leave', threadId, entrant.runId);
        waiter.reject(err);
      }
      return;
    }
    const [verdict, a, b] = reply;
    if (verdict === 'granted') this.#grant(waiter, Number(a));
    else if (verdict === 'queued') {
      waiter.queued = true;
      this.#schedulePoll();
    } else if (this.#settle(waiter)) {
      const what = verdict === 'full' ? `has ${b ?? '?'} runs queued already` : 'is running';
      waiter.reject(busy(threadId, a ?? '', what));
    }
  }

  /** The waiter holds the thread now. */
  #grant(waiter: Waiter, token: number): void {
    // Settled already (aborted, closing): the leave sent then, after the claim, frees the lease.
    if (!this.#settle(waiter)) return;
    this.#held.set(waiter.threadId, { entrant: waiter.entrant, token });
    waiter.resolve(token);
  }

  /** The waiter was aborted: it leaves the queue (or the lease it got meanwhile). */
  #abandon(waiter: Waiter): void {
    if (!this.#settle(waiter)) return;
    this.#send('leave', waiter.threadId, waiter.entrant.runId);
    waiter.reject(waiter.entrant.controller.signal.reason);
  }

  /** Takes the waiter out of the waiting list; false when it was settled already. */
  #settle(waiter: Waiter): boolean {
    const key = waiterKey(waiter.threadId, waiter.entrant.runId);
    if (this.#waiting.get(key) !== waiter) return false;
    this.#waiting.delete(key);
    waiter.entrant.controller.signal.removeEventListener('abort', waiter.onAbort);
    return true;
  }

  readonly #onMessage = (channel: string, message: string): void => {
    if (channel !== this.#channel || this.#closed) return;
    let m: LeaseMessage;
    try {
      m = JSON.parse(message) as LeaseMessage;
    } catch {
      return;
    }
    if (typeof m.t !== 'string') return;
    const threadId = m.t;
    if (m.e === 'grant' && typeof m.run === 'string') {
      const waiter = this.#waiting.get(waiterKey(threadId, m.run));
      if (waiter !== undefined) this.#grant(waiter, Number(m.token));
      else if (m.node === this.#nodeId && this.#held.get(threadId)?.entrant.runId !== m.run) {
        // Granted to a run of this node that no longer waits: give it on (a no-op if it was released).
        this.#send('release', threadId, m.run);
      }
    } else if (m.e === 'free') {
      for (const waiter of this.#waiting.values()) if (waiter.threadId === threadId) this.#poll(waiter);
    } else if (m.e === 'interrupt' && typeof m.by === 'string') {
      const reason = interrupted(threadId, m.by);
      const removed = Array.isArray(m.removed) ? (m.removed as unknown[]) : [];
      for (const runId of removed) {
        const waiter = typeof runId === 'string' ? this.#waiting.get(waiterKey(threadId, runId)) : undefined;
        if (waiter !== undefined && this.#settle(waiter)) waiter.reject(reason);
      }
      const holder = this.#held.get(threadId);
      if (holder !== undefined && holder.entrant.runId === m.holder) abortWith(holder.entrant, reason);
    }
  };

  #schedulePoll(): void {
    if (this.#closed || this.#pollTimer !== undefined) return;
    this.#pollTimer = this.#clock.setTimeout(() => {
      this.#pollTimer = undefined;
      for (const waiter of this.#waiting.values()) this.#poll(waiter);
      if (this.#waiting.size > 0) this.#schedulePoll();
    }, this.options.pollMs);
  }

  /** Asks Redis whether a queued waiter has the thread now; keeps it alive there. */
  #poll(waiter: Waiter): void {
    if (!waiter.queued || waiter.polling || this.#closed) return;
    waiter.polling = true;
    const { threadId, entrant } = waiter;
    const polled = this.#script('poll', threadId, entrant.runId, []).then(
      (reply) => {
        const [verdict, a] = reply as string[];
        if (verdict === 'granted') this.#grant(waiter, Number(a));
        else if (verdict === 'interrupted' && this.#settle(waiter))
          waiter.reject(interrupted(threadId, a ?? ''));
      },
      // Through an outage the claim keeps waiting; the polls resume when Redis is back.
      (err: unknown) => this.#log.debug({ err, threadId }, 'could not poll a waiting thread claim'),
    );
    void polled.finally(() => (waiter.polling = false));
  }

  #scheduleRenew(): void {
    if (this.#closed) return;
    this.#renewTimer = this.#clock.setTimeout(() => {
      // The next one is due on time even if Redis is slow to answer this one.
      this.#scheduleRenew();
      this.#track(this.#renew());
    }, this.options.renewIntervalMs);
  }

  /** Extends this node's leases; aborts the runs whose lease was lost or is wanted by an interrupt. */
  async #renew(): Promise<void> {
    // Never waits for it: a hanging subscription must not delay the renewals.
    if (this.#listening === false) this.#subscribed = this.#subscribe();
    if (this.#held.size === 0) return;
    const holders = [...this.#held];
    // Sent together: ioredis pipelines them into one round trip.
    const replies = await Promise.allSettled(
      holders.map(([threadId, h]) => this.#script('renew', threadId, h.entrant.runId, [])),
    );
    let failed: unknown;
    replies.forEach((settled, i) => {
      const [threadId, holder] = holders[i] as [string, Holder];
      if (settled.status === 'rejected') {
        failed = settled.reason;
        return;
      }
      const [verdict, other] = settled.value as string[];
      if (verdict === 'lost') {
        if (this.#held.get(threadId) !== holder) return; // released meanwhile
        this.#held.delete(threadId);
        this.#log.warn({ threadId, runId: holder.entrant.runId, now: other }, 'a thread lease was lost');
        abortWith(
          holder.entrant,
          new AgentPoolError(
            'LEASE_LOST',
            `run ${holder.entrant.runId} lost its lease on thread ${threadId} (not renewed within the ttl)`,
            { threadId, runId: holder.entrant.runId },
          ),
        );
      } else if (other !== undefined && other !== '' && this.#held.get(threadId) === holder) {
        // The interrupt's message was lost: its mark on the lease says the same.
        abortWith(holder.entrant, interrupted(threadId, other));
      }
    });
    if (failed !== undefined) this.#log.warn({ err: failed }, 'could not renew the thread leases held');
  }

  async #subscribe(): Promise<boolean> {
    this.#listening = undefined;
    try {
      await this.#subscriber.subscribe(this.#channel);
      return (this.#listening = true);
    } catch (err) {
      this.#listening = false;
      // Polls stand in for the messages until the next renewal subscribes again.
      this.#log.warn({ err }, 'could not subscribe to thread lease messages');
      return false;
    }
  }

  /** Sends a leave or release without waiting; one Redis misses lets the lease expire. */
  #send(mode: 'leave' | 'release', threadId: string, runId: string): void {
    this.#track(
      this.#script(mode, threadId, runId, []).catch((err: unknown) =>
        this.#log.warn(
          { err, threadId, runId },
          `a thread lease ${mode} did not reach Redis; it will expire`,
        ),
      ),
    );
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #script(
    mode: string,
    threadId: string,
    runId: string,
    extra: readonly (string | number)[],
  ): Promise<unknown> {
    const base = this.#keys(threadId);
    return THREAD_LEASE.run(
      this.#redis,
      [`${base}lease`, `${base}fence`, `${base}queue`, `${base}tickets`],
      [mode, base, this.#channel, this.options.leaseTtlMs, threadId, runId, this.#nodeId, ...extra],
    );
  }

  /** The start of every key of a thread; the `{threadId}` hash tag keeps them in one cluster slot. */
  #keys(threadId: string): string {
    return `${this.#prefix}thread:{${threadId}}:`;
  }
}

function waiterKey(threadId: string, runId: string): string {
  return `${threadId}\n${runId}`;
}

function abortWith(entrant: GateEntrant, reason: AgentPoolError): void {
  if (!entrant.controller.signal.aborted) entrant.controller.abort(reason);
}

/** The reason runs superseded by an `interrupt` run end with (ThreadGate's own). */
function interrupted(threadId: string, by: string): AgentPoolError {
  return new AgentPoolError('RUN_INTERRUPTED', `interrupted by run ${by}`, { threadId, by });
}

/** THREAD_BUSY as ThreadGate words it. */
function busy(threadId: string, activeRunId: string, what: string): AgentPoolError {
  return new AgentPoolError('THREAD_BUSY', `thread ${threadId} ${what} (run ${activeRunId})`, {
    threadId,
    activeRunId,
  });
}
