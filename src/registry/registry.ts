/**
 * The agent registry: create, read, list, version, roll back and delete agent definitions in a
 * project, on top of an AgentStore. Every change of a definition makes a new immutable version
 * and emits an `agent.*` event; the pool listens to retire instances of superseded versions.
 * `getOrCreate` and `apply` are idempotent under concurrency: in one process through per-name
 * single-flight and locks, across processes through the store's unique name and version checks.
 *
 * A change can also be canaried (see rollouts.ts): while a rollout runs, the active version changes
 * only by promotion. The record and event types live in agent.ts, re-exported here.
 *
 * Writes check what a definition refers to (tools, models) through a hook the composition root
 * gives, so a broken reference is refused when written, not found at the first run. Changes other
 * processes make to the same store are announced like this registry's own (changes.ts), and agents'
 * `lastUsedAt` is recorded in coalesced writes (usage.ts).
 */
import { ChangeWatcher } from './changes.ts';
import { retryRacedWrite } from './raced-writes.ts';
import { AgentUsage, type AgentUsageOptions } from './usage.ts';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { isId, newId } from '../core/ids.ts';
import { intOption } from '../core/options.ts';
import { KeyedMutex, SingleFlight } from '../core/single-flight.ts';
import type { EventSink } from '../events/bus.ts';
import type { FlagStrategy } from '../governance/flags.ts';
import type { AgentStore, Page } from '../store/ports.ts';
import type { Agent, AgentEvent, AgentVersion, Rollout } from './agent.ts';
import {
  type AgentSpec,
  assertSlug,
  parseAgentSpec,
  patchAgentSpec,
  sameSpec,
  type Tier,
} from './definition.ts';
import { noRollout, RolloutWriter, rolloutInProgress, splitRollout } from './rollouts.ts';

export type { Agent, AgentEvent, AgentVersion, Rollout } from './agent.ts';
export { routeVersion } from './rollouts.ts';
export type { AgentUsageOptions } from './usage.ts';

/**
 * Checks that what a complete definition refers to exists (tools, model providers); rejects with
 * `VALIDATION_FAILED` naming the field (`tools[2]`, `model`, `fallbacks[0]`).
 */
export type ReferenceCheck = (spec: AgentSpec) => Promise<void>;

/** Options of the registry. */
export type AgentRegistryOptions = AgentUsageOptions;

/** What `apply` did. */
export type ApplyResult = 'created' | 'updated' | 'unchanged';

/** What the registry is built from. */
export interface AgentRegistryDeps {
  store: AgentStore;
  bus: EventSink<AgentEvent>;
  clock: Clock;
  /**
   * Runs an agent's create when admitted; throws to refuse (governance's `maxAgents` quota, whose
   * check and the create it admits are one section for every node sharing the ledger). Creates in
   * one project are serialised in this process too, so concurrent ones cannot pass it together.
   * @default admits every create
   */
  admitAgent?: <T>(project: string, create: () => Promise<T>) => Promise<T>;
  /**
   * Asked before every write of a new definition (create, update, apply, a rollout's candidate);
   * not on reads, so agents stored with references that no longer resolve still load.
   * @default checks nothing
   */
  checkReferences?: ReferenceCheck;
}

/** Options of {@link AgentRegistry.list}. */
export interface ListAgentsOptions {
  /** 1..1000. @default 50 */
  limit?: number;
  cursor?: string;
  /** Only agents with all these labels. */
  labels?: Record<string, string>;
  /** Only agents whose name contains this text. */
  q?: string;
}

/** Agent definitions of every project. Every method takes the project first: isolation is explicit. */
export class AgentRegistry {
  readonly #store: AgentStore;
  readonly #bus: EventSink<AgentEvent>;
  readonly #clock: Clock;
  readonly #creating = new SingleFlight<string, Agent>();
  readonly #writing = new KeyedMutex<string>();
  readonly #admitting = new KeyedMutex<string>();
  readonly #admitAgent: (<T>(project: string, create: () => Promise<T>) => Promise<T>) | undefined;
  readonly #checkReferences: ReferenceCheck | undefined;
  readonly #rollouts: RolloutWriter;
  readonly #changes: ChangeWatcher | undefined;
  /** Agents' last use, written in coalesced batches. */
  readonly usage: AgentUsage;

  constructor(deps: AgentRegistryDeps, options: AgentRegistryOptions = {}) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
    this.#admitAgent = deps.admitAgent;
    this.#checkReferences = deps.checkReferences;
    this.usage = new AgentUsage(deps.store, deps.clock, options);
    const feed = deps.store.changeFeed;
    this.#changes =
      feed === undefined ? undefined : new ChangeWatcher(feed, deps.bus, () => deps.clock.now());
    this.#rollouts = new RolloutWriter({
      store: deps.store,
      bus: deps.bus,
      clock: deps.clock,
    });
  }

  /**
   * Checks a definition as a write would, without writing: its fields (`parseAgentSpec`) and what
   * it refers to. Returns the complete spec; `VALIDATION_FAILED` naming the field otherwise.
   */
  async validate(input: unknown): Promise<AgentSpec> {
    const spec = parseAgentSpec(input);
    await this.#checkReferences?.(spec);
    return spec;
  }

  /**
   * Announces the definition changes other processes made to the store since the last call
   * (`agent.created`, `agent.changed`, `agent.deleted`), so the pool stops serving stale versions.
   * Undefined, synchronously, when nothing can have changed (the usual case, about a microsecond)
   * or when the store has no other writers (memory). The first call only notes where the store is.
   */
  checkForChanges(): Promise<void> | undefined {
    return this.#changes?.check();
  }

  /** Writes the pending `lastUsedAt` of agents and stops recording them. */
  close(): Promise<void> {
    return this.usage.close();
  }

  /** Creates an agent; `AGENT_EXISTS` when the name is taken in the project, or the admission's refusal. */
  async create(project: string, input: unknown): Promise<Agent> {
    assertSlug('project', project);
    const spec = await this.validate(input);
    const admit = this.#admitAgent;
    if (admit === undefined) return this.#create(project, spec);
    return this.#admitting.run(project, () => admit(project, () => this.#create(project, spec)));
  }

  async #create(project: string, spec: AgentSpec): Promise<Agent> {
    const now = this.#clock.now();
    const agent = await this.#store.create<AgentSpec, FlagStrategy>({
      id: newId('agt', now),
      project,
      name: spec.name,
      spec,
      now,
    });
    this.#emit({ type: 'agent.created', at: now, project, agentId: agent.id, name: agent.name, version: 1 });
    return agent;
  }

  /** The agent with this id or name in the project, or undefined. */
  async find(project: string, idOrName: string): Promise<Agent | undefined> {
    if (isId('agt', idOrName)) {
      const agent = await this.#store.getById<AgentSpec, FlagStrategy>(idOrName);
      return agent?.project === project ? agent : undefined;
    }
    return this.#store.getByName<AgentSpec, FlagStrategy>(project, idOrName);
  }

  /** The agent with this id or name in the project; `AGENT_NOT_FOUND` otherwise. */
  async get(project: string, idOrName: string): Promise<Agent> {
    const agent = await this.find(project, idOrName);
    if (agent === undefined) throw notFound(project, idOrName);
    return agent;
  }

  /** A page of the project's agents, ordered by name. */
  async list(project: string, options: ListAgentsOptions = {}): Promise<Page<Agent>> {
    const limit = intOption('limit', options.limit, 50, 1, 1000);
    return this.#store.list<AgentSpec, FlagStrategy>(project, {
      limit,
      cursor: options.cursor,
      labels: options.labels,
      q: options.q,
    });
  }

  /** Agents of every project with the given tier, ordered by id (used to prewarm the hot set). */
  async listByTier(tier: Tier, options: { limit?: number; cursor?: string } = {}): Promise<Page<Agent>> {
    const limit = intOption('limit', options.limit, 50, 1, 1000);
    return this.#store.listByTier<AgentSpec, FlagStrategy>(tier, { limit, cursor: options.cursor });
  }

  /** Number of agents in the project. */
  count(project: string): Promise<number> {
    return this.#store.count(project);
  }

  /**
   * Applies a patch to the active spec. A change makes a new active version; a patch that changes
   * nothing makes none (`changed: false`).
   *
   * A `rollout` key (a flag strategy, see governance/flags.ts) canaries the change instead: the new
   * version is stored but not activated, and becomes the candidate of a rollout with that flag
   * (`agent.rollout_started`). With a rollout running, a patch holding only `rollout` changes its
   * flag (`agent.rollout_changed`), keeping the candidate and `startedAt`; the new flag takes effect
   * from now (`flagStartedAt`: a gradual ramp starts over). A patch that changes the spec fails with
   * `ROLLOUT_IN_PROGRESS`, unless it restates the candidate's spec with a `rollout` (a repeated
   * request). `rollout` without a spec change and without a running rollout is `VALIDATION_FAILED`.
   */
  update(project: string, idOrName: string, patch: unknown): Promise<{ agent: Agent; changed: boolean }> {
    return this.#writeLocked(project, idOrName, async () => {
      const { specPatch, flag } = splitRollout(patch);
      return retryRacedWrite(async () => {
        const current = await this.get(project, idOrName);
        const spec = patchAgentSpec(current.spec, specPatch);
        if (current.rollout !== null) {
          return this.#rollouts.updateRollingOut(current, current.rollout, spec, flag);
        }
        if (sameSpec(spec, current.spec)) {
          if (flag !== undefined) {
            throw validationError(
              'rollout',
              `has nothing to roll out: the patch leaves agent ${current.name} as its active version ${current.activeVersion} defines it`,
            );
          }
          return { agent: current, changed: false };
        }
        await this.#checkReferences?.(spec);
        if (flag !== undefined) {
          return { agent: await this.#rollouts.startRollout(current, spec, flag), changed: true };
        }
        return { agent: await this.#addVersion(current, spec), changed: true };
      });
    });
  }

  /** The agent's rollout; `ROLLOUT_NOT_FOUND` when none is running. */
  async rollout(project: string, idOrName: string): Promise<Rollout> {
    const agent = await this.get(project, idOrName);
    if (agent.rollout === null) throw noRollout(agent);
    return agent.rollout;
  }

  /**
   * Ends the rollout by making its candidate the active version (`agent.rollout_promoted`; the
   * pool retires the old version's instance as on an update). `ROLLOUT_NOT_FOUND` when none runs.
   */
  promote(project: string, idOrName: string): Promise<Agent> {
    return this.#endRollout(project, idOrName, true);
  }

  /**
   * Ends the rollout and keeps the active version (`agent.rollout_aborted`); the candidate stays in
   * the version history. `ROLLOUT_NOT_FOUND` when none runs.
   */
  abortRollout(project: string, idOrName: string): Promise<Agent> {
    return this.#endRollout(project, idOrName, false);
  }

  /** Makes an earlier version active again; `VERSION_NOT_FOUND` when it does not exist. */
  rollback(project: string, idOrName: string, version: number): Promise<Agent> {
    intOption('version', version, 1);
    return this.#writeLocked(project, idOrName, async () => {
      const current = await this.get(project, idOrName);
      if (current.activeVersion === version) return current;
      if (current.rollout !== null) throw rolloutInProgress(current, current.rollout);
      const now = this.#clock.now();
      const agent = await this.#store.activateVersion<AgentSpec, FlagStrategy>(current.id, version, now);
      this.#emit({
        type: 'agent.rolled_back',
        at: now,
        project,
        agentId: agent.id,
        name: agent.name,
        version,
        previousVersion: current.activeVersion,
      });
      return agent;
    });
  }

  /** Deletes an agent and its versions; `AGENT_NOT_FOUND` when absent. */
  delete(project: string, idOrName: string): Promise<Agent> {
    return this.#writeLocked(project, idOrName, async () => {
      const agent = await this.get(project, idOrName);
      if (!(await this.#store.delete(agent.id))) throw notFound(project, idOrName);
      this.#emit({
        type: 'agent.deleted',
        at: this.#clock.now(),
        project,
        agentId: agent.id,
        name: agent.name,
        reason: 'deleted',
      });
      return agent;
    });
  }

  /** The agent's versions, newest first. */
  async versions(
    project: string,
    idOrName: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<Page<AgentVersion>> {
    const limit = intOption('limit', options.limit, 50, 1, 1000);
    const agent = await this.get(project, idOrName);
    return this.#store.listVersions<AgentSpec>(agent.id, { limit, cursor: options.cursor });
  }

  /** One version of an agent; `VERSION_NOT_FOUND` when absent. */
  async version(project: string, idOrName: string, version: number): Promise<AgentVersion> {
    const agent = await this.get(project, idOrName);
    const found = await this.#store.getVersion<AgentSpec>(agent.id, version);
    if (found === undefined) {
      throw new AgentPoolError('VERSION_NOT_FOUND', `agent ${agent.name} has no version ${version}`, {
        agent: agent.name,
        version,
      });
    }
    return found;
  }

  /**
   * The agent called `name`, created from `spec` if it does not exist. An existing agent is
   * returned as it is. Concurrent calls with one name create it once and all return it.
   */
  getOrCreate(project: string, name: string, spec: unknown = {}): Promise<Agent> {
    assertSlug('project', project);
    assertSlug('name', name);
    const input = { ...(spec as object), name };
    return this.#creating.run(`${project}\u0000${name}`, async () => {
      const existing = await this.#store.getByName<AgentSpec, FlagStrategy>(project, name);
      if (existing !== undefined) return existing;
      try {
        return await this.create(project, input);
      } catch (err) {
        if (!isAgentPoolError(err, 'AGENT_EXISTS')) throw err;
        return this.get(project, name); // another process created it first
      }
    });
  }

  /**
   * Declarative upsert: creates the agent, or makes a new version when `spec` differs from the
   * active one, or does nothing. The full spec replaces the old one (omitted fields take defaults).
   */
  apply(project: string, input: unknown): Promise<{ agent: Agent; result: ApplyResult }> {
    assertSlug('project', project);
    const spec = parseAgentSpec(input);
    return this.#writeLocked(project, spec.name, () =>
      retryRacedWrite(async (): Promise<{ agent: Agent; result: ApplyResult }> => {
        const current = await this.#store.getByName<AgentSpec, FlagStrategy>(project, spec.name);
        if (current === undefined) return { agent: await this.create(project, spec), result: 'created' };
        if (sameSpec(spec, current.spec)) return { agent: current, result: 'unchanged' };
        if (current.rollout !== null) throw rolloutInProgress(current, current.rollout);
        await this.#checkReferences?.(spec);
        return { agent: await this.#addVersion(current, spec), result: 'updated' };
      }, ['AGENT_EXISTS', 'VERSION_CONFLICT']),
    );
  }

  /** Records that an agent was used now (keeps ephemeral agents alive). */
  touch(agentId: string): Promise<void> {
    return this.#store.touch(agentId, this.#clock.now());
  }

  /**
   * Deletes ephemeral agents unused for longer than their ttl, skipping those `isActive` says are
   * in use; returns how many were deleted.
   */
  async sweepExpired(isActive: (agentId: string) => boolean, limit = 1000): Promise<number> {
    const now = this.#clock.now();
    let deleted = 0;
    for (const agent of await this.#store.listExpired<AgentSpec, FlagStrategy>(now, limit)) {
      if (isActive(agent.id)) continue;
      if (!(await this.#store.delete(agent.id))) continue;
      deleted++;
      this.#emit({
        type: 'agent.deleted',
        at: now,
        project: agent.project,
        agentId: agent.id,
        name: agent.name,
        reason: 'expired',
      });
    }
    return deleted;
  }

  async #addVersion(current: Agent, spec: AgentSpec): Promise<Agent> {
    const now = this.#clock.now();
    const agent = await this.#store.addVersion<AgentSpec, FlagStrategy>(
      current.id,
      current.latestVersion,
      spec,
      now,
    );
    this.#emit({
      type: 'agent.updated',
      at: now,
      project: agent.project,
      agentId: agent.id,
      name: agent.name,
      version: agent.activeVersion,
      previousVersion: current.activeVersion,
    });
    return agent;
  }

  /** Promotes or aborts the running rollout, retrying when another writer got there first. */
  #endRollout(project: string, idOrName: string, promote: boolean): Promise<Agent> {
    return this.#writeLocked(project, idOrName, () =>
      this.#rollouts.endRollout(() => this.get(project, idOrName), promote),
    );
  }

  /**
   * Serialises writes that name one agent the same way in this process. Writers that reach one
   * agent by id and by name, or from other processes, are caught by the store's version check.
   */
  #writeLocked<V>(project: string, idOrName: string, fn: () => Promise<V>): Promise<V> {
    return this.#writing.run(`${project}\u0000${idOrName}`, fn);
  }

  #emit(event: AgentEvent): void {
    this.#bus.emit(event);
  }
}

function notFound(project: string, idOrName: string): AgentPoolError {
  return new AgentPoolError('AGENT_NOT_FOUND', `agent ${JSON.stringify(idOrName)} not found`, {
    project,
    agent: idOrName,
  });
}
