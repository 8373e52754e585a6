/**
 * The feature flags of a running pool (`pool.flags`): evaluated synchronously from memory, changed
 * at runtime through the flag store (set, delete, both audited), and kept current on every node
 * that shares the store: a change is applied at once on the node that made it, told to the other
 * nodes over the cluster's event relay (Redis), and every node also polls the store's last change
 * id each `cluster.changePollMs` (1 s by default), which covers a lost message or a store several
 * processes share without Redis (one SQLite file).
 *
 * Flags of the configuration (`options.flags`, the config file's `flags:`) are defaults: at start
 * each one is written to the store when the store never had it, or when the store's copy was last
 * written by the configuration and differs. A flag changed at runtime (PUT, DELETE) is then left
 * alone by every restart: a change made on one node for the whole cluster must not be undone by
 * the next restart of any node with its older file.
 */
import type { EventRelay } from '../coordination/cluster.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isAgentPoolError, validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import type { FlagChange, FlagStore, StoredFlag } from '../store/flag-ports.ts';
import type { Page } from '../store/ports.ts';
import {
  checkFlagName,
  FeatureFlags,
  type FlagDefinition,
  type FlagInfo,
  flagNotFound,
  type NamedFlag,
  parseFlagDefinition,
  sameFlagStrategy,
} from './flags.ts';

/** Flags a pool holds at most: they are all evaluated from memory on every node. */
export const MAX_FLAGS = 1000;

/** Who writes when the caller does not say. */
const LIBRARY_ACTOR = 'library';
/** The actor of the flags seeded from the configuration. */
export const CONFIG_ACTOR = 'config';

/** A flag with its current share and the change that set it. */
export interface RuntimeFlagInfo extends FlagInfo {
  /** The id of the change that set it; pass it as `expectedRevision` to write only over this one. */
  readonly revision: number;
  readonly updatedAt: number;
  readonly updatedBy: string;
}

/** Emitted by the node that changed a flag; the other nodes learn of it over the relay. */
export interface FlagChangedEvent {
  readonly type: 'flag.changed';
  readonly at: number;
  readonly name: string;
  readonly action: FlagChange['action'];
  /** The change's id. */
  readonly revision: number;
  readonly actor: string;
}

/** Who writes, and optionally the revision the writer last saw (0: only if absent). */
export interface FlagWriteOptions {
  /** Recorded in the history (1-200 characters; `config` is reserved). @default 'library' */
  actor?: string;
  /** Write only over this revision; `VERSION_CONFLICT` otherwise. @default any */
  expectedRevision?: number;
}

/** What {@link RuntimeFlags} works with. */
export interface RuntimeFlagsDeps {
  store: FlagStore;
  clock: Clock;
  bus: EventSink<FlagChangedEvent>;
  /** The cluster's relay (undefined on a node alone). */
  relay?: EventRelay | undefined;
  log: Logger;
  /** How often the store's last change is polled, ms (`cluster.changePollMs`); 0 never. */
  pollMs: number;
}

/** The pool's feature flags: sync evaluation from memory, async persisted changes. */
export class RuntimeFlags {
  readonly #deps: RuntimeFlagsDeps;
  readonly #memory: FeatureFlags;
  readonly #config: ReadonlyMap<string, { named: NamedFlag; startedAtGiven: boolean }>;
  #stored = new Map<string, StoredFlag>();
  #seen = -1;
  #reloading: Promise<boolean> | undefined;
  #again = false;
  #timer: TimerHandle | undefined;
  #stops: (() => void)[] = [];
  #closed = false;

  /** Validates the configuration's flags (errors name `flags.<name>.<field>`); nothing is read yet. */
  constructor(deps: RuntimeFlagsDeps, config: Readonly<Record<string, FlagDefinition>> = {}) {
    this.#deps = deps;
    this.#memory = new FeatureFlags({ flags: config, clock: deps.clock });
    this.#config = new Map(
      this.#memory.list().map((f) => [
        f.name,
        {
          named: { flag: f.flag, startedAt: f.startedAt },
          startedAtGiven: (config[f.name] as { startedAt?: unknown }).startedAt !== undefined,
        },
      ]),
    );
  }

  /** Seeds the configuration's flags, loads the store's, and starts following changes. */
  async start(): Promise<void> {
    for (const [name, { named, startedAtGiven }] of this.#config) {
      await this.#seed(name, named, startedAtGiven);
    }
    await this.reload();
    const relay = this.#deps.relay;
    if (relay !== undefined) {
      this.#stops.push(
        relay.onEvent((event) => {
          if (event.type === 'flag.changed') this.#reloadInBackground('a flag change told over Redis');
        }),
        relay.onResubscribed(() => this.#reloadInBackground('Redis reconnected')),
      );
    }
    this.#schedule();
  }

  /** Whether flag `name` is on for this request (from memory); `NOT_FOUND` for an unknown name. */
  isEnabled(name: string, ctx: { project: string; key: string }): boolean {
    return this.#memory.isEnabled(name, ctx);
  }

  /** True when a flag of that name is defined. */
  has(name: string): boolean {
    return this.#memory.has(name);
  }

  /** One flag as this node evaluates it, or undefined. */
  get(name: string): RuntimeFlagInfo | undefined {
    const info = this.#memory.get(name);
    return info === undefined ? undefined : this.#withRevision(info);
  }

  /** Every flag as this node evaluates it, by name. */
  list(): RuntimeFlagInfo[] {
    return this.#memory.list().map((info) => this.#withRevision(info));
  }

  /**
   * Creates or replaces flag `name` with `definition` (a strategy, optionally `startedAt`, which
   * defaults to now), audited; in effect here at once and on every node within `changePollMs`.
   * `VALIDATION_FAILED` naming the field for a bad name or definition. Answers the flag and the
   * audited change (`change.before` null: created).
   */
  async set(
    name: string,
    definition: unknown,
    options: FlagWriteOptions = {},
  ): Promise<{ flag: RuntimeFlagInfo; change: FlagChange }> {
    checkFlagName(name, 'name');
    const at = this.#deps.clock.now();
    const named = parseFlagDefinition(definition, 'flag', at);
    if (!this.#memory.has(name) && this.#memory.size >= MAX_FLAGS) {
      throw validationError('name', `cannot define another flag: a pool holds at most ${MAX_FLAGS}`);
    }
    const { flag, change } = await this.#deps.store.putFlag(name, named, this.#write(options, at));
    this.#applied(flag, change);
    return { flag: this.get(name) as RuntimeFlagInfo, change };
  }

  /** Deletes flag `name`, audited; `NOT_FOUND` when there is none. Answers the change. */
  async delete(name: string, options: FlagWriteOptions = {}): Promise<FlagChange> {
    checkFlagName(name, 'name');
    const change = await this.#deps.store.deleteFlag(name, this.#write(options, this.#deps.clock.now()));
    if (change === undefined) throw flagNotFound(name);
    this.#applied(undefined, change);
    return change;
  }

  /** Flag `name`'s changes, newest first (`limit` 1-1000, default 100); kept after a delete. */
  async history(name: string, options: { limit?: number; cursor?: string } = {}): Promise<Page<FlagChange>> {
    checkFlagName(name, 'name');
    return this.#deps.store.flagHistory(name, { limit: options.limit ?? 100, cursor: options.cursor });
  }

  /**
   * Reads the store's flags if anything changed since the last read (one cheap query otherwise);
   * answers whether they were read. Concurrent calls share one read, followed by one more.
   */
  async reload(): Promise<boolean> {
    if (this.#reloading !== undefined) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      let read = false;
      try {
        do {
          this.#again = false;
          read = (await this.#readIfChanged()) || read;
        } while (this.#again && !this.#closed);
        return read;
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /** Stops following changes (the store is closed by the pool). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    for (const stop of this.#stops) stop();
    await this.#reloading?.catch(() => undefined);
  }

  async #readIfChanged(): Promise<boolean> {
    const last = await this.#deps.store.lastFlagChange();
    if (last === this.#seen) return false;
    const flags = await this.#deps.store.listFlags();
    this.#stored = new Map(flags.map((f) => [f.name, f]));
    this.#memory.replaceAll(flags.map((f) => [f.name, { flag: f.flag, startedAt: f.startedAt }] as const));
    this.#seen = last;
    return true;
  }

  async #seed(name: string, named: NamedFlag, startedAtGiven: boolean): Promise<void> {
    const { store, clock, log } = this.#deps;
    const stored = await store.getFlag(name);
    let expectedRevision: number;
    if (stored === undefined) {
      // Never there: seeded. Deleted at runtime: left deleted.
      if ((await store.flagHistory(name, { limit: 1 })).data.length > 0) return;
      expectedRevision = 0;
    } else {
      if (stored.updatedBy !== CONFIG_ACTOR) return; // changed at runtime: the store's copy wins
      const same =
        sameFlagStrategy(stored.flag, named.flag) &&
        (!startedAtGiven || stored.startedAt === named.startedAt);
      if (same) return;
      expectedRevision = stored.revision;
    }
    try {
      await store.putFlag(name, named, { actor: CONFIG_ACTOR, at: clock.now(), expectedRevision });
      log.info({ flag: name, strategy: named.flag.strategy }, 'feature flag written from the configuration');
    } catch (err) {
      // Another node starting with the same configuration wrote it first.
      if (!isAgentPoolError(err, 'VERSION_CONFLICT')) throw err;
    }
  }

  #write(options: FlagWriteOptions, at: number) {
    const actor = options.actor ?? LIBRARY_ACTOR;
    if (typeof actor !== 'string' || actor === '' || actor.length > 200) {
      throw validationError('actor', 'must be a string of 1-200 characters');
    }
    if (actor === CONFIG_ACTOR) {
      // A runtime write must never pass for the configuration's, or the next start would override it.
      throw validationError(
        'actor',
        `"${CONFIG_ACTOR}" is reserved for the flags written from the configuration`,
      );
    }
    return {
      actor,
      at,
      ...(options.expectedRevision !== undefined && {
        expectedRevision: intOption('expectedRevision', options.expectedRevision, 0, 0),
      }),
    };
  }

  #applied(flag: StoredFlag | undefined, change: FlagChange): void {
    if (this.#reloading !== undefined) this.#again = true; // a read under way may predate this write
    if (flag === undefined) this.#stored.delete(change.name);
    else this.#stored.set(change.name, flag);
    this.#memory.apply(
      change.name,
      flag === undefined ? undefined : { flag: flag.flag, startedAt: flag.startedAt },
    );
    const event: FlagChangedEvent = {
      type: 'flag.changed',
      at: change.at,
      name: change.name,
      action: change.action,
      revision: change.id,
      actor: change.actor,
    };
    this.#deps.bus.emit(event);
    this.#deps.relay?.publish(event);
  }

  #withRevision(info: FlagInfo): RuntimeFlagInfo {
    const stored = this.#stored.get(info.name);
    return {
      ...info,
      revision: stored?.revision ?? 0,
      updatedAt: stored?.updatedAt ?? info.startedAt,
      updatedBy: stored?.updatedBy ?? CONFIG_ACTOR,
    };
  }

  #reloadInBackground(why: string): void {
    if (this.#closed) return;
    this.reload().catch((err: unknown) => this.#deps.log.warn({ err, why }, 'reading feature flags failed'));
  }

  #schedule(): void {
    if (this.#deps.pollMs === 0 || this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      if (this.#closed) return;
      this.reload()
        .catch((err: unknown) => this.#deps.log.warn({ err }, 'reading feature flags failed'))
        .finally(() => this.#schedule());
    }, this.#deps.pollMs);
  }
}
