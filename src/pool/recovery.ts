/**
 * Failure recovery: counts each agent's own failures (recovery-failures.ts says which) in a
 * sliding window, and once they reach `maxFailuresPerHour` takes one step per further failure, in
 * escalation order: `restart` (its live instance restarted), `recover` (rebuilt from the stored
 * definition, its tool modules loaded again), `migrate` (down a tier: hot → warm → cold, once per
 * tier), `escalate` (degraded: its runs answer 503 `AGENT_DEGRADED` until an operator resets it or
 * `cooldownMs` passes). Each step goes in the agent's bounded record and out as an
 * `instance.recovery` event; a cluster shares `escalate` and `reset` through `share`.
 *
 * The run path pays one integer comparison here when no agent is degraded; successful runs pay a
 * status comparison. Everything else happens on failures, which are rare, and on a sweep timer.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import type { Tier } from '../registry/definition.ts';
import type { Agent } from '../registry/registry.ts';
import { type FinishedRun, isAgentActivationFailure, isAgentRunFailure } from './recovery-failures.ts';
import {
  RECOVERY_STRATEGIES,
  type RecoveryEvent,
  type RecoveryStep,
  type RecoveryStrategy,
} from './recovery-events.ts';
import type { ResolvedRecoveryOptions } from './recovery-options.ts';

export { RECOVERY_STRATEGIES } from './recovery-events.ts';
export type { RecoveryEvent, RecoveryStep, RecoveryStepName, RecoveryStrategy } from './recovery-events.ts';

/** What happened to the live instance on `restart`. */
export type RestartOutcome = 'restarted' | 'retired' | 'none';

/** What recovery needs of the pool and the layers around it. */
export interface RecoveryDeps {
  clock: Clock;
  bus: EventSink<RecoveryEvent>;
  /** The instance pool's hands on an agent's live instance. */
  pool: {
    restart(agentId: string, cause: Error): Promise<RestartOutcome>;
    deactivate(project: string, idOrName: string): boolean;
  };
  /** Reads the agent's stored definition (its tier decides the ladder). */
  readAgent(project: string, agentId: string): Promise<Agent>;
  /** Drops what activations cache for the agent (its tool modules), so `recover` resolves them anew. */
  forgetResolved?: (agent: Agent) => void;
  /** Tells the other nodes of a cluster of an `escalate` or `reset` (undefined on a single node). */
  share?: (event: RecoveryEvent) => void;
  /** This node's id, written on each step. */
  nodeId: string;
  logger?: Logger;
}

/** An agent's state as far as recovery goes. */
export type RecoveryStatus = 'ok' | 'recovering' | 'degraded';

/** An agent's record of recovery, as the API shows it. */
export interface AgentRecoveryInfo {
  project: string;
  agentId: string;
  name: string;
  status: RecoveryStatus;
  /** Counted failures within the window now. */
  failures: number;
  windowMs: number;
  maxFailuresPerHour: number;
  /** The strategy the next counted failure at or over the threshold takes. */
  nextStep: RecoveryStrategy;
  /** The tier `migrate` moved the agent down to; null when on its own. */
  migratedTo: Tier | null;
  degraded: { since: number; until: number | null; cause: { code: string; message: string } | null } | null;
  lastFailureAt: number | null;
  /** Newest last, at most `historySize`. */
  history: RecoveryStep[];
}

/** Figures of recovery, for `/metrics` and the stats API. */
export interface RecoveryStats {
  tracked: number;
  degraded: number;
  /** Failures counted since start, by kind. */
  failures: { activation: number; run: number };
  /** Steps taken since start, by strategy. */
  steps: Record<RecoveryStrategy, number>;
}

interface AgentRecord {
  project: string;
  agentId: string;
  name: string;
  /** Epoch ms of counted failures, oldest first; at most the threshold plus the ladder's length. */
  failures: number[];
  /** Index in the agent's ladder of the next step. */
  next: number;
  migratedTo: Tier | null;
  degraded: { since: number; until: number | null; cause: { code: string; message: string } | null } | null;
  history: RecoveryStep[];
  /** The agent's own tier when it last took a step (its ladder); null before. */
  tier: Tier | null;
  /** Steps decided and not yet carried out: each failure's step waits for the one before. */
  chain: Promise<void>;
}

/** The steps for an agent of `tier` (auto activates warm), in order. */
export function recoveryLadder(tier: Tier): RecoveryStrategy[] {
  if (tier === 'hot') return ['restart', 'recover', 'migrate', 'migrate', 'escalate'];
  if (tier === 'cold') return ['restart', 'recover', 'escalate'];
  return ['restart', 'recover', 'migrate', 'escalate'];
}

const LONGEST_LADDER = recoveryLadder('hot').length;

/** Failure recovery of one pool. */
export class Recovery {
  readonly options: ResolvedRecoveryOptions;
  readonly #deps: RecoveryDeps;
  /** By agent id, least recently failed first; at most `maxTrackedAgents`. */
  readonly #agents = new Map<string, AgentRecord>();
  /** Agents degraded now: the run path's one check while it is 0. */
  #degradedCount = 0;
  readonly #failures = { activation: 0, run: 0 };
  readonly #steps = Object.fromEntries(RECOVERY_STRATEGIES.map((s) => [s, 0])) as Record<
    RecoveryStrategy,
    number
  >;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: RecoveryDeps, options: ResolvedRecoveryOptions) {
    this.#deps = deps;
    this.options = options;
    if (options.enabled) this.#schedule();
  }

  /**
   * Refuses a run of a degraded agent with 503 `AGENT_DEGRADED` (`Retry-After`: the cooldown left).
   * Called before anything of the run counts; a cooldown that passed lets the run through.
   */
  assertServes(agent: { id: string; project: string; name: string }): void {
    if (this.#degradedCount === 0) return;
    const degraded = this.#agents.get(agent.id)?.degraded;
    if (degraded == null) return;
    const now = this.#deps.clock.now();
    if (degraded.until !== null && degraded.until <= now) return; // the sweep records its end
    throw degradedError(agent, degraded.until === null ? undefined : degraded.until - now);
  }

  /** Told of every finished run; counts the agent's own failures (one comparison for the rest). */
  runFinished(run: FinishedRun & { project: string; agentId: string; agentName: string }): void {
    if (run.status !== 'failed' || !this.options.enabled || !isAgentRunFailure(run)) return;
    this.#failures.run++;
    this.#count(run.project, run.agentId, run.agentName, run.error ?? null, undefined);
  }

  /** Told of every failed activation; counts it unless the store, Redis or closing caused it. */
  activationFailed(agent: Agent, err: unknown): void {
    if (!this.options.enabled || this.#closed || !isAgentActivationFailure(err)) return;
    this.#failures.activation++;
    const cause = {
      code: err instanceof AgentPoolError ? err.code : 'ACTIVATION_FAILED',
      message: err instanceof Error ? err.message : String(err),
    };
    this.#count(agent.project, agent.id, agent.name, cause, agent);
  }

  /**
   * An operator's reset: the agent's failures are forgotten, its degraded mark lifted, its own
   * tier restored, its ladder started over; told to the other nodes. Returns its record.
   */
  reset(agent: { id: string; project: string; name: string }): AgentRecoveryInfo {
    const record = this.#record(agent.project, agent.id, agent.name);
    const step = this.#clear(record, 'reset');
    this.#deps.share?.(step);
    return this.#describe(record, this.#deps.clock.now());
  }

  /** The agent's record (an empty one when it never failed here). */
  info(agent: { id: string; project: string; name: string }): AgentRecoveryInfo {
    const now = this.#deps.clock.now();
    const record = this.#agents.get(agent.id);
    if (record !== undefined) return this.#describe(record, now);
    return this.#describe(this.#blank(agent.project, agent.id, agent.name), now);
  }

  /** The records of a project's agents (of every project when undefined), degraded first. */
  list(project?: string): AgentRecoveryInfo[] {
    const now = this.#deps.clock.now();
    const out: AgentRecoveryInfo[] = [];
    for (const r of this.#agents.values())
      if (project === undefined || r.project === project) out.push(this.#describe(r, now));
    const rank = { degraded: 0, recovering: 1, ok: 2 } as const;
    return out.sort(
      (a, b) => rank[a.status] - rank[b.status] || (b.lastFailureAt ?? 0) - (a.lastFailureAt ?? 0),
    );
  }

  stats(): RecoveryStats {
    return {
      tracked: this.#agents.size,
      degraded: this.#degradedCount,
      failures: { ...this.#failures },
      steps: { ...this.#steps },
    };
  }

  /** Applies a step another node took: its `escalate` degrades the agent here too, its `reset` resets it. */
  applyShared(event: RecoveryEvent): void {
    if (event.node === this.#deps.nodeId || this.#closed) return;
    const record = this.#record(event.project, event.agentId, event.name);
    if (event.step === 'reset') this.#clear(record, 'reset', event.node);
    else if (event.step === 'escalate') {
      this.#degrade(record, event.cause, event.until ?? null, event.at);
      this.#push(record, { ...event });
      this.#deps.pool.deactivate(event.project, event.agentId);
    }
  }

  /** Runs the sweep now: ends cooldowns, drops failures that left the window, restores tiers. */
  sweep(): void {
    const now = this.#deps.clock.now();
    for (const record of this.#agents.values()) {
      const d = record.degraded;
      if (d !== null && d.until !== null && d.until <= now) {
        record.degraded = null;
        this.#degradedCount--;
        this.#emit(record, {
          step: 'cooldown_ended',
          at: now,
          failures: this.#inWindow(record, now),
          cause: null,
          node: this.#deps.nodeId,
        });
      }
      if (this.#inWindow(record, now) === 0 && record.degraded === null) {
        record.next = 0;
        if (record.migratedTo !== null) {
          record.migratedTo = null;
          this.#emit(record, {
            step: 'restored',
            at: now,
            failures: 0,
            cause: null,
            node: this.#deps.nodeId,
          });
        }
      }
    }
  }

  /** The tier `migrate` moved the agent to, if any (the pool activates it there). */
  migratedTier(agentId: string): Tier | undefined {
    return this.#agents.get(agentId)?.migratedTo ?? undefined;
  }

  /** Steps already decided and running (tests and shutdown wait for them). */
  async settled(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((r) => r.chain));
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  // ── internals ────────────────────────────────────────────────────────────

  #count(
    project: string,
    agentId: string,
    name: string,
    cause: { code: string; message: string } | null,
    agent: Agent | undefined,
  ): void {
    const now = this.#deps.clock.now();
    const record = this.#record(project, agentId, name);
    // least recently failed first: move it to the end
    this.#agents.delete(agentId);
    this.#agents.set(agentId, record);
    const max = this.options.maxFailuresPerHour;
    record.failures.push(now);
    if (record.failures.length > max + LONGEST_LADDER) record.failures.shift();
    const failures = this.#inWindow(record, now);
    if (failures < max) {
      record.next = 0; // stayed under the threshold: the ladder starts over
      return;
    }
    const at = record.next;
    record.next++;
    // The tier decides the ladder: read from the store unless the activation that failed has it.
    record.chain = record.chain
      .then(async () => {
        if (this.#closed) return;
        const current = agent ?? (await this.#deps.readAgent(project, agentId));
        await this.#take(record, current, at, failures, cause, now);
      })
      .catch((err: unknown) =>
        this.#deps.logger?.warn({ err, project, agent: name }, 'a recovery step failed'),
      );
  }

  async #take(
    record: AgentRecord,
    agent: Agent,
    index: number,
    failures: number,
    cause: { code: string; message: string } | null,
    at: number,
  ): Promise<void> {
    record.tier = agent.spec.tier;
    const ladder = recoveryLadder(agent.spec.tier);
    let strategy = ladder[Math.min(index, ladder.length - 1)] as RecoveryStrategy;
    const from = record.migratedTo ?? (agent.spec.tier === 'auto' ? 'warm' : agent.spec.tier);
    // Already at the bottom (a cold agent, or migrated there): nothing lower to go to.
    if (strategy === 'migrate' && from === 'cold') strategy = 'escalate';
    const node = this.#deps.nodeId;
    const base = { at, failures, cause, node };
    this.#steps[strategy]++;
    const { pool } = this.#deps;
    switch (strategy) {
      case 'restart': {
        const outcome = await pool.restart(agent.id, new Error(cause?.message ?? 'failure recovery'));
        this.#emit(record, { ...base, step: 'restart', outcome });
        return;
      }
      case 'recover':
        this.#deps.forgetResolved?.(agent);
        pool.deactivate(agent.project, agent.id);
        this.#emit(record, { ...base, step: 'recover' });
        return;
      case 'migrate': {
        const tier: Tier = from === 'hot' ? 'warm' : 'cold';
        record.migratedTo = tier;
        pool.deactivate(agent.project, agent.id); // the next activation is at the new tier
        this.#emit(record, { ...base, step: 'migrate', tier });
        return;
      }
      case 'escalate': {
        const { cooldownMs } = this.options;
        const until = cooldownMs === 0 ? null : this.#deps.clock.now() + cooldownMs;
        this.#degrade(record, cause, until, this.#deps.clock.now());
        pool.deactivate(agent.project, agent.id);
        const step = this.#emit(record, { ...base, step: 'escalate', until });
        this.#deps.share?.(step);
        this.#deps.logger?.warn(
          { project: agent.project, agent: agent.name, failures, code: cause?.code, until },
          'agent degraded by failure recovery: its runs are refused until a reset or the cooldown',
        );
      }
    }
  }

  #degrade(
    record: AgentRecord,
    cause: { code: string; message: string } | null,
    until: number | null,
    since: number,
  ): void {
    if (record.degraded === null) this.#degradedCount++;
    record.degraded = { since, until, cause };
  }

  /** Forgets failures, lifts the mark and the migration; emits and returns the step. */
  #clear(record: AgentRecord, step: 'reset', node = this.#deps.nodeId): RecoveryEvent {
    const now = this.#deps.clock.now();
    if (record.degraded !== null) this.#degradedCount--;
    record.degraded = null;
    record.failures.length = 0;
    record.next = 0;
    record.migratedTo = null;
    return this.#emit(record, { step, at: now, failures: 0, cause: null, node });
  }

  #emit(record: AgentRecord, step: RecoveryStep): RecoveryEvent {
    this.#push(record, step);
    const event: RecoveryEvent = {
      ...step,
      type: 'instance.recovery',
      project: record.project,
      agentId: record.agentId,
      name: record.name,
    };
    this.#deps.bus.emit(event);
    return event;
  }

  #push(record: AgentRecord, step: RecoveryStep): void {
    const { type: _t, project: _p, agentId: _a, name: _n, ...entry } = step as RecoveryEvent;
    record.history.push(entry);
    if (record.history.length > this.options.historySize) record.history.shift();
  }

  #inWindow(record: AgentRecord, now: number): number {
    const since = now - this.options.windowMs;
    while (record.failures.length > 0 && (record.failures[0] as number) <= since) record.failures.shift();
    return record.failures.length;
  }

  #record(project: string, agentId: string, name: string): AgentRecord {
    let record = this.#agents.get(agentId);
    if (record !== undefined) return record;
    record = this.#blank(project, agentId, name);
    if (this.#agents.size >= this.options.maxTrackedAgents) this.#forgetOne();
    this.#agents.set(agentId, record);
    return record;
  }

  /** Forgets the least recently failed agent that is not degraded (the oldest of all if every one is). */
  #forgetOne(): void {
    for (const [id, r] of this.#agents) {
      if (r.degraded === null) {
        this.#agents.delete(id);
        return;
      }
    }
    const [id, r] = this.#agents.entries().next().value as [string, AgentRecord];
    if (r.degraded !== null) this.#degradedCount--;
    this.#agents.delete(id);
  }

  #blank(project: string, agentId: string, name: string): AgentRecord {
    return {
      project,
      agentId,
      name,
      failures: [],
      next: 0,
      migratedTo: null,
      degraded: null,
      history: [],
      tier: null,
      chain: Promise.resolve(),
    };
  }

  #describe(r: AgentRecord, now: number): AgentRecoveryInfo {
    const failures = this.#inWindow(r, now);
    const live = r.degraded !== null && (r.degraded.until === null || r.degraded.until > now);
    const ladder = recoveryLadder(r.tier ?? 'warm');
    return {
      project: r.project,
      agentId: r.agentId,
      name: r.name,
      status: live ? 'degraded' : r.next > 0 || r.migratedTo !== null ? 'recovering' : 'ok',
      failures,
      windowMs: this.options.windowMs,
      maxFailuresPerHour: this.options.maxFailuresPerHour,
      nextStep: ladder[Math.min(r.next, ladder.length - 1)] as RecoveryStrategy,
      migratedTo: r.migratedTo,
      degraded: live && r.degraded !== null ? { ...r.degraded } : null,
      lastFailureAt: r.failures.at(-1) ?? null,
      history: [...r.history],
    };
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.sweep();
      this.#schedule();
    }, this.options.sweepIntervalMs);
  }
}

/** `AGENT_DEGRADED`: failure recovery stopped the agent's runs until a reset or the cooldown. */
export function degradedError(
  agent: { project: string; name: string },
  retryAfterMs: number | undefined,
): AgentPoolError {
  return new AgentPoolError(
    'AGENT_DEGRADED',
    `agent ${agent.name} is degraded after repeated failures: its runs are refused until an operator resets it (POST /v1/pool/instances/${agent.name}/reset)${retryAfterMs === undefined ? '' : ' or its cooldown passes'}`,
    {
      project: agent.project,
      agent: agent.name,
      ...(retryAfterMs !== undefined && { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) }),
    },
  );
}
