/**
 * The run event log of a cluster, in Redis: one stream per run, `{prefix}run:{runId}:events`, its
 * entry ids taken from the events' sequence numbers (`{seq}-1`), so resuming after seq N is a plain
 * XRANGE from `{N+1}-0` on any node. Streams are bounded in length (`XADD … MAXLEN ~ maxEvents`,
 * the oldest go first) and in age (`PEXPIRE maxAgeMs` after each batch, so a run's events live
 * `maxAgeMs` after its last one, and a dead node's unfinished runs are cleaned up too).
 *
 * Writing never makes the run wait: `append` queues the event, and the events queued in one tick
 * leave together, one script per run (add the events the stream does not hold yet, set its expiry,
 * publish a notice) pipelined on the command connection. Because the script skips sequence numbers
 * the stream already holds, a batch resent after an outage lands once. While Redis cannot be
 * reached the events wait (at most `maxPending`, the oldest dropped with a warning) and leave when
 * it answers again (the connection's `ready`, or the next retry every `pollMs`).
 *
 * Readers on any node learn of new events from one pub/sub channel, `{prefix}run-events`, whose
 * messages are the run ids of each written batch; pub/sub may lose messages (a subscriber
 * reconnecting), so each reader also reads again every `pollMs`. No reader holds a blocking
 * connection: every XRANGE goes over the node's shared command connection.
 */
import type { Redis } from 'ioredis';
import { isAgentPoolError } from '../../core/errors.ts';
import { type Logger, silentLogger } from '../../core/logger.ts';
import { intOption, rejectUnknownKeys } from '../../core/options.ts';
import { isTerminalRunEvent, type LoggedRunEvent, type RunEventLog } from '../run-event-log.ts';
import { LuaScript, redisFailure } from './lua-script.ts';

/** Options of the Redis run event log. */
export interface RedisRunEventLogOptions {
  /** Events kept per run, about (trimming is approximate: whole stream nodes go). @default 10000 */
  maxEvents?: number;
  /** How long a run's events are kept after its last one was written. @default 600000 (10 min) */
  maxAgeMs?: number;
  /** How often a reader looks for events whose notice it missed, and failed writes are retried. @default 1000 */
  pollMs?: number;
  /** Events kept in memory while Redis cannot be reached; beyond, the oldest are dropped. @default 10000 */
  maxPending?: number;
}

/** {@link RedisRunEventLogOptions} with every default applied. */
export interface ResolvedRedisRunEventLogOptions {
  readonly maxEvents: number;
  readonly maxAgeMs: number;
  readonly pollMs: number;
  readonly maxPending: number;
}

/** Applies defaults and rejects bad values by field name (`eventLog.maxEvents must be …`). */
export function resolveRedisRunEventLogOptions(
  options: RedisRunEventLogOptions = {},
): ResolvedRedisRunEventLogOptions {
  rejectUnknownKeys('eventLog.', options, ['maxEvents', 'maxAgeMs', 'pollMs', 'maxPending']);
  return {
    maxEvents: intOption('eventLog.maxEvents', options.maxEvents, 10_000, 1, 10_000_000),
    maxAgeMs: intOption('eventLog.maxAgeMs', options.maxAgeMs, 600_000, 1000, 30 * 86_400_000),
    pollMs: intOption('eventLog.pollMs', options.pollMs, 1000, 10, 60_000),
    maxPending: intOption('eventLog.maxPending', options.maxPending, 10_000, 1, 10_000_000),
  };
}

/** What the log talks to. */
export interface RedisRunEventLogDeps {
  /** A command connection (connection.ts); the log does not close it. */
  redis: Redis;
  /**
   * A connection in subscribe mode, shared with the node's other subscribers: the log subscribes
   * to its own channel only, and neither unsubscribes others' channels nor closes it.
   */
  subscriber: Redis;
  /** Prefix of every key and channel. */
  prefix: string;
  /** @default silent */
  logger?: Logger;
}

/**
 * Adds a batch of one run's events. KEYS: the stream. ARGV: maxEvents, maxAgeMs, channel, runId,
 * then seq and JSON of each event, in order. Sequence numbers the stream already holds (a batch
 * resent after its reply was lost) are skipped, so each event lands once.
 */
const APPEND = new LuaScript(
  'the run event append script',
  `local key = KEYS[1]
local last = 0
local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
local added = 0
for i = 5, #ARGV, 2 do
  if tonumber(ARGV[i]) > last then
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-1', 'e', ARGV[i + 1])
    last = tonumber(ARGV[i])
    added = added + 1
  end
end
if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[2]) end
if added > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return added
`,
);

/** Events of one run sent in one script call at most (a longer backlog takes several rounds). */
const BATCH_EVENTS = 500;
/** Entries read per XRANGE. */
const PAGE = 500;

/** A reader following a run: woken by a notice, the poll timer, an abort or close. */
interface Follower {
  /** Set by a notice since the reader last read: read again before waiting. */
  noticed: boolean;
  wake: (() => void) | undefined;
}

/** Run events shared by every node on one Redis (and prefix). */
export class RedisRunEventLog<E extends LoggedRunEvent = LoggedRunEvent> implements RunEventLog<E> {
  readonly options: ResolvedRedisRunEventLogOptions;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #log: Logger;
  /**
   * Appended, not yet written: `#queue[#head…]`, oldest first (each run's in seq order). Dropping
   * the oldest moves `#head`, so an append stays O(1) even when the queue is full.
   */
  #queue: E[] = [];
  #head = 0;
  /** Events of the round under way. */
  #sending = 0;
  /** The round of writes under way; resolves true when nothing was left for lack of Redis. */
  #round: Promise<boolean> | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** Set while Redis cannot be reached (a warning was logged). */
  #unreachable = false;
  /** Events dropped since the last write that went through (a warning was logged at the first). */
  #dropped = 0;
  /** Readers following a run on this node, by run id. */
  readonly #followers = new Map<string, Set<Follower>>();
  readonly #onMessage = (channel: string, message: string) => {
    if (channel === this.#channel) this.#notify(message);
  };
  readonly #onSubscriberReady = () => void this.#subscribe(true);
  readonly #subscribed: Promise<void>;
  readonly #onRedisReady = () => {
    if (this.#queued > 0) void this.#start();
  };
  #closed = false;

  constructor(deps: RedisRunEventLogDeps, options?: RedisRunEventLogOptions) {
    this.options = resolveRedisRunEventLogOptions(options);
    this.#redis = deps.redis;
    this.#subscriber = deps.subscriber;
    this.#prefix = deps.prefix;
    this.#channel = `${deps.prefix}run-events`;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'run-event-log' });
    this.#subscriber.on('message', this.#onMessage);
    // The connection resubscribes by itself after a reconnect; notices sent meanwhile are lost,
    // so followers read again then (and the subscribe below covers a first subscribe that failed).
    this.#subscriber.on('ready', this.#onSubscriberReady);
    this.#redis.on('ready', this.#onRedisReady);
    this.#subscribed = this.#subscribe(false);
  }

  /**
   * Resolves once the first subscribe to notices was answered (or failed, logged: readers poll
   * until the next reconnect subscribes).
   */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  /** Events appended and not written yet (in the current tick, being sent, or kept through an outage). */
  get pending(): number {
    return this.#queued + this.#sending;
  }

  /** Events waiting for the next round. */
  get #queued(): number {
    return this.#queue.length - this.#head;
  }

  append(event: E): void {
    if (this.#closed) {
      this.#log.warn({ runId: event.runId, seq: event.seq }, 'run event appended after close: dropped');
      return;
    }
    this.#queue.push(event);
    if (this.#queued > this.options.maxPending) this.#drop(this.#queued - this.options.maxPending);
    // During an outage the retry timer sends; otherwise the events of this tick leave together.
    if (this.#round === undefined && this.#immediate === undefined && this.#retry === undefined) {
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        void this.#start();
      });
    }
  }

  async read(runId: string, afterSeq: number, signal?: AbortSignal): Promise<AsyncIterable<E> | undefined> {
    const key = this.#key(runId);
    const first = await this.#range(key, afterSeq + 1);
    if (first.length === 0 && !(await this.#exists(key))) return undefined;
    return this.#follow(runId, key, first, afterSeq, signal);
  }

  async lastSeq(runId: string): Promise<number> {
    let last: [string, string[]][];
    try {
      last = await this.#redis.xrevrange(this.#key(runId), '+', '-', 'COUNT', 1);
    } catch (err) {
      throw redisFailure(err, 'a read of run events');
    }
    const id = last[0]?.[0];
    return id === undefined ? 0 : Number(id.split('-')[0]);
  }

  async flush(): Promise<void> {
    for (;;) {
      const round = this.#round ?? (this.#queued > 0 ? this.#start() : undefined);
      if (round === undefined || !(await round)) return;
    }
  }

  /**
   * Tries once more to write what is pending, gives up (logged) what Redis still did not take,
   * ends this node's readers and leaves the channel. Neither connection is closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.flush();
      if (this.#queued > 0) {
        this.#log.error({ events: this.#queued }, 'run events Redis never received were given up');
        this.#take();
      }
    } finally {
      clearImmediate(this.#immediate);
      clearTimeout(this.#retry);
      this.#immediate = undefined;
      this.#retry = undefined;
      for (const followers of this.#followers.values()) for (const f of followers) f.wake?.();
      this.#redis.off('ready', this.#onRedisReady);
      this.#subscriber.off('ready', this.#onSubscriberReady);
      this.#subscriber.off('message', this.#onMessage);
      await this.#subscriber.unsubscribe(this.#channel).catch((err: unknown) => {
        this.#log.debug({ err }, 'could not unsubscribe from the run events channel');
      });
    }
  }

  #key(runId: string): string {
    return `${this.#prefix}run:${runId}:events`;
  }

  #subscribe(reconnected: boolean): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#subscriber.subscribe(this.#channel).then(
      () => {
        if (reconnected)
          for (const followers of this.#followers.values()) for (const f of followers) this.#wake(f);
      },
      (err: unknown) =>
        this.#log.warn({ err }, 'could not subscribe to run event notices: readers poll meanwhile'),
    );
  }

  /** A notice: the run's stream has new events. */
  #notify(runId: string): void {
    const followers = this.#followers.get(runId);
    if (followers !== undefined) for (const f of followers) this.#wake(f);
  }

  #wake(f: Follower): void {
    f.noticed = true;
    f.wake?.();
  }

  /** Starts a round of writes now (cancelling a scheduled one). */
  #start(): Promise<boolean> {
    if (this.#round !== undefined) return this.#round;
    clearImmediate(this.#immediate);
    clearTimeout(this.#retry);
    this.#immediate = undefined;
    this.#retry = undefined;
    const round = this.#send().finally(() => {
      this.#round = undefined;
    });
    this.#round = round;
    void round.then((delivered) => {
      if (this.#closed || this.#queued === 0) return;
      if (delivered) void this.#start();
      else this.#retry = setTimeout(() => void this.#start(), this.options.pollMs).unref();
    });
    return round;
  }

  /** Writes everything pending; false when some of it stays pending because Redis is unreachable. */
  async #send(): Promise<boolean> {
    const batch = this.#take();
    this.#sending = batch.length;
    const byRun = new Map<string, E[]>();
    for (const event of batch) {
      const events = byRun.get(event.runId);
      if (events === undefined) byRun.set(event.runId, [event]);
      else events.push(event);
    }
    const kept: E[][] = [];
    let failure: unknown;
    await Promise.all(
      Array.from(byRun, async ([runId, events]) => {
        for (let i = 0; i < events.length; i += BATCH_EVENTS) {
          const chunk = events.slice(i, i + BATCH_EVENTS);
          try {
            await this.#write(runId, chunk);
            this.#sending -= chunk.length;
          } catch (err) {
            const error = redisFailure(err, 'run events');
            if (!isAgentPoolError(error, 'COORDINATION_UNAVAILABLE')) {
              // Redis answered and refused: sending them again would fail the same way.
              this.#log.error({ err: error, runId }, 'Redis refused run events: dropped');
              this.#sending -= chunk.length;
              continue;
            }
            failure = error;
            kept.push(events.slice(i)); // the rest of this run waits, so it stays in order
            return;
          }
        }
      }),
    );
    this.#sending = 0;
    if (failure === undefined) {
      if (this.#unreachable) {
        this.#unreachable = false;
        this.#log.info('Redis reachable again: the run events kept meanwhile were written');
      }
      if (this.#dropped > 0) {
        this.#log.warn({ dropped: this.#dropped }, 'run events were dropped while they waited for Redis');
        this.#dropped = 0;
      }
      return true;
    }
    if (!this.#unreachable) {
      this.#unreachable = true;
      this.#log.warn({ err: failure }, 'Redis unreachable: run events kept for a retry');
    }
    // Kept events are older than any appended since; each run's stay in seq order.
    this.#queue = kept.flat().concat(this.#take());
    if (this.#queued > this.options.maxPending) this.#drop(this.#queued - this.options.maxPending);
    return false;
  }

  async #write(runId: string, events: readonly E[]): Promise<void> {
    const { maxEvents, maxAgeMs } = this.options;
    const args: (string | number)[] = [maxEvents, maxAgeMs, this.#channel, runId];
    for (const event of events) {
      let json: string;
      try {
        json = JSON.stringify(event);
      } catch (err) {
        this.#log.error({ err, runId, seq: event.seq }, 'a run event cannot be serialised: dropped');
        continue;
      }
      args.push(event.seq, json);
    }
    if (args.length > 4) await APPEND.run(this.#redis, [this.#key(runId)], args);
  }

  /** Empties the queue and returns what it held, oldest first. */
  #take(): E[] {
    const events = this.#head === 0 ? this.#queue : this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    return events;
  }

  /** Drops the `n` oldest pending events (memory is bounded even when Redis stays away). */
  #drop(n: number): void {
    this.#head += n;
    // Compacts once half the array is dropped events: amortised O(1) per drop.
    if (this.#head > this.#queue.length / 2) this.#queue = this.#take();
    if (this.#dropped === 0) {
      this.#log.warn(
        { maxPending: this.options.maxPending },
        'too many run events waiting for Redis: the oldest are dropped',
      );
    }
    this.#dropped += n;
  }

  /** Entries of `key` from seq `from` on, at most a page; rejects with COORDINATION_UNAVAILABLE. */
  async #range(key: string, from: number): Promise<E[]> {
    let entries: [string, string[]][];
    try {
      entries = await this.#redis.xrange(key, `${from}-0`, '+', 'COUNT', PAGE);
    } catch (err) {
      throw redisFailure(err, 'a read of run events');
    }
    const events: E[] = [];
    for (const [id, fields] of entries) {
      const json = fields[1];
      try {
        if (json === undefined) throw new Error('the entry has no event');
        events.push(JSON.parse(json) as E);
      } catch (err) {
        this.#log.warn({ err, key, id }, 'an unreadable run event was skipped');
      }
    }
    return events;
  }

  async #exists(key: string): Promise<boolean> {
    try {
      return (await this.#redis.exists(key)) === 1;
    } catch (err) {
      throw redisFailure(err, 'a read of run events');
    }
  }

  async *#follow(
    runId: string,
    key: string,
    first: E[],
    afterSeq: number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<E> {
    const follower: Follower = { noticed: false, wake: undefined };
    let followers = this.#followers.get(runId);
    if (followers === undefined) {
      followers = new Set();
      this.#followers.set(runId, followers);
    }
    followers.add(follower);
    const onAbort = () => follower.wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    let next = afterSeq + 1;
    let page = first;
    try {
      for (;;) {
        for (const event of page) {
          if (event.seq < next) continue;
          if (signal?.aborted === true) return;
          yield event;
          next = event.seq + 1;
          if (isTerminalRunEvent(event)) return;
        }
        if (page.length >= PAGE) {
          page = await this.#range(key, next);
          continue;
        }
        // Wait for a notice or the poll; a notice that came while reading is not lost.
        let polled = false;
        if (!follower.noticed) {
          if (this.#closed || signal?.aborted === true) return;
          polled = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
              follower.wake = undefined;
              resolve(true);
            }, this.options.pollMs);
            follower.wake = () => {
              clearTimeout(timer);
              follower.wake = undefined;
              resolve(false);
            };
          });
        }
        if (this.#closed || signal?.aborted === true) return;
        follower.noticed = false;
        page = await this.#range(key, next);
        // A run whose node died never ends: its stream expires maxAgeMs later, and so does the reader.
        if (polled && page.length === 0 && !(await this.#exists(key))) return;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      followers.delete(follower);
      if (followers.size === 0 && this.#followers.get(runId) === followers) this.#followers.delete(runId);
    }
  }
}
