/**
 * Runs end to end: validate, claim the thread (multitask strategy), lease the agent's instance,
 * commit the user's input, execute, release. Every run is visible from the moment it is accepted
 * (`queued`: in the store for a background run or a cluster's, else in this node's memory until
 * its first write, run-writes.ts), streams numbered events, can be cancelled, and always ends in
 * a terminal status that is committed to the store.
 */
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { WatchedAbortController } from '../core/abort-watch.ts';
import { newId } from '../core/ids.ts';
import { OldestKey } from '../core/oldest-key.ts';
import { SoloMap } from '../core/solo-map.ts';
import { parseId, parseMetadata } from '../core/input-limits.ts';
import { enumOption } from '../core/options.ts';
import type { AdmitRequest, Governance, RunAdmission } from '../governance/governance.ts';
import type { Lease } from '../pool/lease.ts';
import type { LoadGate, TimedOutRun } from '../pool/load-gate.ts';
import type { InstancePool } from '../pool/pool.ts';
import { type Agent, type AgentRegistry, routeVersion } from '../registry/registry.ts';
import type { AgentSpec } from '../registry/definition.ts';
import type {
  MessageRecord,
  NewMessage,
  NewThread,
  RunRecord,
  RunStore,
  ThreadRecord,
} from '../store/ports.ts';
import type { Tool } from '../tools/tool.ts';
import { effectiveMaxTokens } from './call-settings.ts';
import { checkToolNames, clientToolDefinitions, openToolCalls, pairToolCalls } from './conversation.ts';
import { type ToolContent, toPrompt } from './messages.ts';
import {
  bringsConversation,
  inputMessages,
  resolveRunRequest,
  type RunRequest,
  type StartRunOptions,
} from './run-request.ts';
import {
  MULTITASK_STRATEGIES,
  type GateEntrant,
  type MultitaskStrategy,
} from '../coordination/thread-gate.ts';
import type { EventRelay } from '../coordination/cluster.ts';
import type { RunEventLog } from '../coordination/run-event-log.ts';
import type { BackgroundJob, RunQueue } from '../coordination/run-queue.ts';
import type { ThreadLeases } from '../coordination/thread-leases.ts';
import type { ThreadHistoryCache } from './history-cache.ts';
import { IGNORE_RUNS, type RunObserver } from './observer.ts';
import { describeError, promptBytes, type Runner, type RunInput } from './runner.ts';
import { toolDefinitions } from './tool-calls.ts';
import { RunWrites } from './run-writes.ts';
import { type RunEvent, RunEventStream } from './stream.ts';
import type { Threads } from './threads.ts';
import { unansweredNote } from './unanswered-note.ts';

export type { StartRunOptions } from './run-request.ts';

/** A started run. */
export interface RunHandle {
  readonly id: string;
  /** The run as accepted (`queued`). */
  readonly accepted: RunRecord;
  readonly stream: RunEventStream;
  /** Resolves with the terminal, committed record; never rejects. */
  readonly result: Promise<RunRecord>;
}

/** What the run manager is built from. */
export interface RunManagerDeps {
  registry: AgentRegistry;
  pool: InstancePool;
  store: RunStore;
  runner: Runner;
  /** One run per thread: in this process, or across a cluster (with fencing tokens). */
  leases: ThreadLeases;
  threads: Threads;
  /** A cluster's run events, so a stream resumes on any node. @default none: this node's memory only */
  eventLog?: RunEventLog<RunEvent>;
  /**
   * A cluster's queue of background runs, which any node takes from. @default none: a background
   * run starts at once on the node that accepted it
   */
  queue?: RunQueue;
  /** Tells the other nodes of a cluster to cancel a run one of them holds. @default none */
  relay?: EventRelay | undefined;
  clock: Clock;
  /** Told of finished runs and THREAD_BUSY refusals. @default ignores */
  observer?: RunObserver;
  /** Recent messages of recently used threads. */
  history: ThreadHistoryCache;
  /** Admits runs by quotas and budgets. */
  governance: Governance;
  /**
   * The tools of an agent's references, for the size of their definitions when a budgeted run
   * is admitted on a cold start (no live instance knows them yet). @default counts none
   */
  resolveTools?: (refs: readonly string[], project: string) => Promise<readonly Tool[]>;
  /**
   * Refuses an agent's runs before anything of them counts, by throwing (failure recovery's
   * `AGENT_DEGRADED`). Called on every run: it must cost a comparison. @default admits every agent
   */
  gate?: (agent: Agent) => void;
  /** Refuses new runs while the node sheds load (the health monitor). @default never refuses */
  load?: LoadGate;
}

/** Limits of the run manager. */
export interface RunManagerOptions {
  /** Messages of a thread sent to the model at most (older ones are left out). @default 200 */
  historyLimit: number;
  /** Finished runs whose events stay replayable in memory. @default 1000 */
  recentStreams: number;
  /** Approximate bytes (as JSON) of the events those finished runs hold in all. @default 67108864 (64 MiB) */
  recentStreamsBytes: number;
  /** Events of one run kept for replay. @default 10000 */
  replayEvents: number;
  /** Approximate bytes (as JSON) of one run's events kept for replay. @default 2097152 (2 MiB) */
  replayBytes: number;
}

/** A run that holds its thread and instance: its input messages, and those messages as committed (none yet for a run written with its first step). */
interface Started {
  inputs: NewMessage[];
  committed: MessageRecord[];
}

/** How a run is accepted. */
interface Acceptance {
  /**
   * A background run taken from the queue, already recorded (`queued`), or started on a node that
   * died (it goes on after its last committed step, its input already on the thread).
   */
  existing?: RunRecord;
  /** Recorded before start() returns: the caller is told it was accepted (background). */
  durable: boolean;
}

/** What start() worked out for the run, handed on to #drive. */
interface Plan {
  request: RunRequest;
  /** The tool message content carrying the request's tool results, names filled in. */
  results: ToolContent | undefined;
  /** The thread history a `store: false` run reads and sends before its own messages. */
  prefix: readonly (MessageRecord | NewMessage)[];
  /** Whether the client tools were checked against the agent's own already (warm start). */
  toolsChecked: boolean;
  /**
   * The store's write epoch read as the run was accepted, when it starts at once: its first call
   * checks the thread's cached history against it instead of reading the epoch again.
   */
  epoch: number | undefined;
}

/** What a budgeted admission measures the run's first model call from (see #firstCallBytes). */
interface FirstCall {
  spec: AgentSpec;
  request: RunRequest;
  runId: string;
  now: number;
  thread: ThreadRecord | undefined;
  /** The thread's history as this process knows it (then `thread` is not read). */
  known: MessageRecord[] | undefined;
  /** The store's write epoch taken before `thread` was read. */
  epoch: number | undefined;
  /** A run that keeps nothing: the history it read from its thread. */
  prefix: readonly (MessageRecord | NewMessage)[];
  lease: Lease | undefined;
}

/** How a wait or stream run is accepted. */
/** What accepting a run works out before anything may wait. */
interface Intake {
  project: string;
  agentRef: string;
  options: StartRunOptions;
  existing: RunRecord | undefined;
  request: RunRequest;
  metadata: RunRecord['metadata'];
  resuming: boolean;
  strategy: MultitaskStrategy;
  /** Written with its first step (RunWrites): a wait or stream run of one node. */
  lazy: boolean;
  now: number;
  newThread: NewThread | undefined;
  writes: RunWrites;
  threadId: string | null;
  /** The thread a run that keeps nothing reads. */
  readThread: string | null;
  entrant: GateEntrant;
}

/** What admission is asked for a run of `spec`. */
function admittedOf(
  project: string,
  agentId: string,
  spec: AgentSpec,
  request: RunRequest,
): Omit<AdmitRequest, 'promptBytes'> {
  return {
    project,
    agentId,
    agentQuotas: spec.limits,
    models: spec.fallbacks === undefined ? [spec.model] : [spec.model, ...spec.fallbacks],
    // The run's own cap when it asks for less than the agent allows: reserve what it may use.
    maxTokens: effectiveMaxTokens(spec.maxTokens, request.settings),
    hasTools: spec.tools.length > 0,
  };
}

const WAITED_FOR: Acceptance = Object.freeze({ durable: false });
const NO_MESSAGES: readonly never[] = Object.freeze([]);
const NO_OPEN_CALLS: ReadonlyMap<string, string> = new Map();

/** A new run, nothing counted yet: `queued`, or `running` from `startedAt`. */
function newRun(r: {
  id: string;
  project: string;
  agent: { id: string; name: string };
  version: number;
  model: string;
  threadId: string | null;
  input: string;
  metadata: RunRecord['metadata'];
  createdAt: number;
  startedAt: number | null;
}): RunRecord {
  return {
    id: r.id,
    project: r.project,
    agentId: r.agent.id,
    agentName: r.agent.name,
    agentVersion: r.version,
    threadId: r.threadId,
    status: r.startedAt === null ? 'queued' : 'running',
    input: r.input,
    output: null,
    model: r.model,
    steps: 0,
    inputTokens: 0,
    outputTokens: 0,
    cost: 0,
    error: null,
    metadata: r.metadata,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: null,
  };
}

/** How long a cancel waits for the node holding the run to end it (ms). */
const CANCEL_WAIT_MS = 10_000;

/** The event that asks the node holding a run to cancel it. */
interface RunCancel {
  readonly type: 'run.cancel';
  readonly at: number;
  readonly runId: string;
}

function isTerminal(status: RunRecord['status']): boolean {
  return status !== 'queued' && status !== 'running';
}

/** Why a background run stops, unfinished, on a node that closes: another node goes on with it. */
function handedOver(): AgentPoolError {
  return new AgentPoolError('RUN_INTERRUPTED', 'the node is closing: another node resumes the run', {
    handedOver: true,
  });
}

function cancelled(): AgentPoolError {
  return new AgentPoolError('RUN_CANCELLED', 'the run was cancelled');
}

function notActive(run: RunRecord): AgentPoolError {
  return new AgentPoolError('RUN_NOT_ACTIVE', `run ${run.id} already ended (${run.status})`, {
    runId: run.id,
    status: run.status,
  });
}

/** Messages read from a thread's end to find the tool calls its last run left open. */
const OPEN_CALLS_WINDOW = 16;

/** A finished run whose events stay replayable. */
interface RecentStream {
  project: string;
  stream: RunEventStream;
  /** Epoch ms when the run finished (retention forgets it with the run). */
  finishedAt: number;
}

interface LiveRun {
  project: string;
  /**
   * The run as accepted, then as it started (`running` once it holds its thread and instance):
   * what get() answers until its first write is in the store.
   */
  record: RunRecord;
  controller: AbortController;
  stream: RunEventStream;
  result: Promise<RunRecord>;
  /** A background run taken from a cluster's queue: handed over, not ended, when the node closes. */
  queued: boolean;
  /** Stops following the caller's signal, once the run ended. */
  unfollow: (() => void) | undefined;
  /** Its agent's `runTimeoutMs`, once it holds its instance; 0 when it has none. */
  timeoutMs: number;
}

/** Starts, tracks and cancels runs. */
export class RunManager {
  readonly #deps: RunManagerDeps;
  readonly #options: RunManagerOptions;
  readonly #observer: RunObserver;
  /** Runs not yet terminal, bounded by concurrent requests; usually one at a time, so a SoloMap. */
  readonly #live = new SoloMap<string, LiveRun>();
  /** start() calls still being accepted, so closing waits for them too. */
  #accepting = 0;
  #closed = false;
  /** Callers of idle(), told when the last run in flight ends. */
  readonly #idleWaiters: (() => void)[] = [];
  /** Streams of recently finished runs, oldest first, at most `recentStreams` and `recentStreamsBytes`. */
  readonly #recent = new Map<string, RecentStream>();
  readonly #oldestRecent = new OldestKey(this.#recent);
  /** The sum of the `bytes` of the streams in {@link #recent}; a finished stream's no longer changes. */
  #recentBytes = 0;

  /** Stops listening for cancels from other nodes. */
  readonly #stopRelay: () => void;
  /** The clock every run's events are stamped with. */
  readonly #now = (): number => this.#deps.clock.now();

  constructor(deps: RunManagerDeps, options: RunManagerOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#observer = deps.observer ?? IGNORE_RUNS;
    this.#stopRelay =
      deps.relay?.onEvent((event) => {
        if (event.type === 'run.cancel')
          this.#live.get((event as RunCancel).runId)?.controller.abort(cancelled());
      }) ?? (() => undefined);
  }

  /** Runs accepted and not yet finished. */
  get activeCount(): number {
    return this.#live.size;
  }

  /** Resolves once no run is in flight: at once when none is. */
  idle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Runs in flight, by whether they wait (thread, instance) or run; of one project when given. */
  inFlight(project?: string): { queued: number; running: number } {
    let queued = 0;
    let running = 0;
    for (const live of this.#live.values()) {
      if (project !== undefined && live.project !== project) continue;
      if (live.record.status === 'running') running++;
      else queued++;
    }
    return { queued, running };
  }

  /**
   * Ends a project's runs because the project is being deleted: cancels those in flight (each
   * commits its `cancelled` record), waits for them, and forgets the events of its finished runs
   * kept for replay. Returns how many runs it cancelled. Runs the caller still lets in are not
   * stopped: refuse them first.
   */
  async endProject(project: string, reason: string): Promise<number> {
    let cancelled = 0;
    for (;;) {
      const results: Promise<RunRecord>[] = [];
      for (const live of this.#live.values()) {
        if (live.project !== project) continue;
        live.controller.abort(new AgentPoolError('RUN_CANCELLED', reason));
        results.push(live.result);
      }
      if (results.length === 0) break;
      cancelled += results.length;
      await Promise.all(results);
    }
    for (const [runId, recent] of this.#recent) if (recent.project === project) this.#recent.delete(runId);
    return cancelled;
  }

  /**
   * Accepts a run and starts it in the background. Rejects (and records nothing) on bad input,
   * `AGENT_NOT_FOUND`, `THREAD_NOT_FOUND`, a governance refusal (`QUOTA_EXCEEDED`,
   * `RATE_LIMITED`, `BUDGET_EXHAUSTED`), or `THREAD_BUSY` under the `reject` strategy.
   */
  start(project: string, agentRef: string, options: StartRunOptions): Promise<RunHandle> {
    return this.#start(project, agentRef, options, WAITED_FOR);
  }

  /**
   * Accepts a run. Not async: a run whose every answer is known at once (a live instance, no
   * rollout candidate, a free thread that is new or cached, admission without a wait, nothing
   * written before its first step) is accepted without an async frame, which V8 allocates whole
   * (every register of the function) on each call even when it never waits. Anything else goes
   * on in {@link #startWaiting}, which may wait; the warm path hands it what it holds.
   */
  #start(
    project: string,
    agentRef: string,
    options: StartRunOptions,
    acceptance: Acceptance,
  ): Promise<RunHandle> {
    const { existing, durable } = acceptance;
    if (this.#closed)
      return Promise.reject(new AgentPoolError('POOL_CLOSED', 'the pool is closing: it takes no new runs'));
    const { registry, leases, store, clock, pool, governance, history } = this.#deps;
    let lease: Lease | undefined;
    let claimed: Promise<number | undefined> | undefined;
    let admission: RunAdmission | undefined;
    // What the catch gives back; set once they exist.
    let newThread: NewThread | undefined;
    let writes: RunWrites | undefined;
    let threadId: string | null = null;
    let entrant: GateEntrant | undefined;
    try {
      // A run already accepted (a background run taken from the queue, or resumed) is not refused: it
      // would end failed instead of waiting.
      const load = this.#deps.load;
      if (existing === undefined && load !== undefined && load.overloaded) throw load.refusal();
      const request = resolveRunRequest(options);
      const metadata = parseMetadata('metadata', options.metadata);
      const resuming = existing !== undefined && existing.startedAt !== null;
      // A resumed run waits for its thread: the dead node's lease expires, or a run ahead ends.
      const strategy = resuming
        ? 'enqueue'
        : enumOption('multitask', options.multitask, MULTITASK_STRATEGIES, 'reject');
      // A wait or stream run on one node is written with its first step (or its end): the caller
      // awaits that write, and a crash before it leaves nothing of the run (RunWrites). In a
      // cluster the run is recorded at once: its fencing token must reach the thread first.
      const lazy = existing === undefined && !durable && !leases.fenced;
      const now = clock.now();
      newThread = existing === undefined ? this.#newThread(project, options, request, now) : undefined;
      writes = new RunWrites(
        { store, history },
        { created: existing !== undefined, keep: request.store, thread: newThread },
      );
      const requestedThread =
        newThread?.id ?? (options.threadId === undefined ? null : parseId('threadId', options.threadId));
      // A run that keeps nothing reads its thread but is recorded without one: it appends nothing.
      threadId = request.store ? requestedThread : null;
      const readThread = request.store ? null : requestedThread;
      const id = existing?.id ?? newId('run', now);
      const controller = new WatchedAbortController(); // a model attempt watches it without a listener
      entrant = { runId: id, controller };
      // A definition another process changed retires its stale instance before the warm path looks.
      const checking = registry.checkForChanges();
      // The warm path: a live instance serves the agent now, so no registry read and, when the
      // thread is free too, one transaction records the run as running with the user's message.
      // A `break` leaves it for #startWaiting with the lease it took (the one place an Intake is made).
      warm: {
        if (!lazy || checking !== undefined) break warm;
        lease = pool.tryAcquire(project, agentRef);
        if (lease === undefined || readThread !== null) break warm;
        const agent = lease.agent;
        const spec = agent.spec;
        /** The store's write epoch, taken before the thread is read. */
        const epoch = threadId !== null && newThread === undefined ? store.writeEpoch?.() : undefined;
        if (
          routeVersion(agent, threadId ?? id, now) !== agent.activeVersion ||
          (threadId !== null &&
            (bringsConversation(request) ||
              (newThread === undefined && history.known(project, threadId, epoch) === undefined)))
        )
          break warm;
        this.#deps.gate?.(agent);
        const liveTools = lease.instance.resources?.tools;
        if (liveTools !== undefined)
          checkToolNames(request.clientTools, liveTools, request.settings.toolChoice);
        // Written with the run: no history to read; cached, so that its next run reads none either.
        if (newThread !== undefined)
          history.created(project, newThread.id, history.epoch ?? store.writeEpoch?.());
        // A `reject` run holds its thread before admission (see #startWaiting); a busy one is refused there.
        const rejects = threadId !== null && strategy === 'reject';
        if (rejects && leases.claimNow?.(threadId as string, entrant) !== true) break warm;
        admission = governance.admitNow(admittedOf(project, agent.id, spec, request));
        if (admission === undefined) {
          if (rejects) leases.release(threadId as string, entrant); // claimed again there, before admission
          break warm;
        }
        if (threadId !== null && !rejects && leases.claimNow?.(threadId, entrant) !== true)
          claimed = this.#claim(threadId, entrant, strategy);
        const results = pairToolCalls(request.turns, request.toolResults, NO_OPEN_CALLS);
        // Held already: no thread, a `reject` run's claim, or a claim granted at once in this process.
        const startsNow = claimed === undefined || leases.holds(threadId as string, id);
        const toolsChecked = liveTools !== undefined;
        // The epoch the history was current at, for the first call's history (a run that waits reads it again).
        const plan: Plan = {
          request,
          results,
          prefix: NO_MESSAGES,
          toolsChecked,
          epoch: startsNow ? epoch : undefined,
        };
        if (!startsNow) {
          lease.release(); // never hold an instance while waiting for the thread
          lease = undefined;
        }
        const record = newRun({
          id,
          project,
          agent,
          version: agent.activeVersion,
          model: spec.model,
          threadId,
          input: request.recordInput,
          metadata,
          createdAt: now,
          startedAt: startsNow ? now : null,
        });
        let started: Started | undefined;
        if (startsNow) {
          const inputs = inputMessages(request, results, id, now);
          writes.started(threadId === null ? NO_MESSAGES : inputs);
          started = { inputs, committed: [] };
        }
        return Promise.resolve(
          this.#launch(
            project,
            options,
            false,
            entrant,
            writes,
            record,
            claimed,
            lease,
            started,
            admission,
            undefined,
            plan,
            0,
          ),
        );
      }
      const intake: Intake = {
        project,
        agentRef,
        options,
        existing,
        request,
        metadata,
        resuming,
        strategy,
        lazy,
        now,
        newThread,
        writes,
        threadId,
        readThread,
        entrant,
      };
      return this.#startWaiting(intake, checking, lease);
    } catch (err) {
      // Refused before it was recorded: what it took is given back, and it counts for nothing.
      if (writes !== undefined && entrant !== undefined)
        this.#abandon(lease, admission, claimed, newThread, writes, threadId, entrant);
      return Promise.reject(err);
    }
  }

  /**
   * Accepts a run that may have to wait: for a definition's change, a registry read, its thread's
   * history, its thread, admission, or its record's write. `checking` is the registry's pending
   * check; `lease` the instance the warm path took, else one is looked for here.
   */
  async #startWaiting(
    intake: Intake,
    checking: Promise<void> | undefined,
    taken: Lease | undefined,
  ): Promise<RunHandle> {
    const { project, agentRef, existing, request, metadata, resuming, strategy, lazy, now } = intake;
    const { newThread, writes, threadId, readThread, entrant } = intake;
    const id = entrant.runId;
    this.#accepting++;
    try {
      const { registry, threads, leases, store, pool, governance, history } = this.#deps;
      let lease = taken;
      if (checking !== undefined) await checking;
      if (lease === undefined && !resuming) lease = pool.tryAcquire(project, agentRef);
      /**
       * The thread's claim while it may still be pending (it resolves with the lease's fencing
       * token); undefined once the run holds its thread, or when it has none or claimed none yet.
       */
      let claimed: Promise<number | undefined> | undefined;
      const log = this.#deps.eventLog;
      /** The seq of the last event a resumed run's first node logged. */
      let resumedSeq = 0;
      let started: Started | undefined;
      let accepted: RunRecord;
      let admission: RunAdmission | undefined;
      let pinned: number | undefined;
      let plan: Plan;
      try {
        const agent = lease?.agent ?? (await registry.get(project, agentRef));
        this.#deps.gate?.(agent);
        let spec = agent.spec;
        // A rollout sends the flag's share to its candidate version: a thread stays on one version,
        // stateless runs spread. The candidate is served by a one-shot instance of that version.
        const version = routeVersion(agent, threadId ?? readThread ?? id, now);
        if (version !== agent.activeVersion) {
          lease?.release();
          lease = undefined;
          pinned = version;
          spec = (await registry.version(project, agent.id, version)).spec;
        }
        // With a live instance the agent's tools are known: a clash is refused before anything counts.
        const liveTools = lease?.instance.resources?.tools;
        if (liveTools !== undefined)
          checkToolNames(request.clientTools, liveTools, request.settings.toolChoice);
        let prefix: readonly (MessageRecord | NewMessage)[] = NO_MESSAGES;
        if (readThread !== null) {
          await threads.get(project, readThread);
          prefix = promptHistory(await store.recentMessages(readThread, this.#options.historyLimit));
        }
        let thread: ThreadRecord | undefined;
        /** The thread's history as this process knows it, current: a lazy run's thread needs no read then. */
        let known: readonly MessageRecord[] | undefined;
        /** The store's write epoch, taken before the thread is read. */
        const epoch = lazy && threadId !== null && newThread === undefined ? store.writeEpoch?.() : undefined;
        if (threadId !== null) {
          if (newThread !== undefined) {
            // Written with the run: no history to read; cached, so that its next run reads none either.
            history.created(project, threadId, history.epoch ?? store.writeEpoch?.());
            known = NO_MESSAGES;
          } else {
            known = history.known(project, threadId, epoch);
            if (known === undefined) {
              thread = await threads.get(project, threadId);
              // Checked against the thread just read (or read again), the cache is current from here.
              if (lazy) known = await this.#recentOf(thread, epoch);
            }
          }
          // A `reject` run holds its thread before admission, so the history admission measures is
          // the one its first call sends; the others cannot claim before they are admitted (an
          // `interrupt` would stop the running run for a run that may yet be refused).
          if (strategy === 'reject' && leases.claimNow?.(threadId, entrant) !== true) {
            claimed = this.#claim(threadId, entrant, strategy);
            writes.fence = await claimed; // THREAD_BUSY before anything is written
            claimed = undefined;
          }
        }
        const admitted = admittedOf(project, agent.id, spec, request);
        admission =
          governance.admitNow(admitted) ??
          (await this.#admit(admitted, {
            spec,
            request,
            runId: id,
            now,
            thread,
            // A copy: the cache's array grows with the thread while admission waits.
            known: known?.slice(),
            epoch,
            prefix,
            lease,
          }));
        if (threadId !== null && strategy !== 'reject' && leases.claimNow?.(threadId, entrant) !== true)
          claimed = this.#claim(threadId, entrant, strategy);
        // Tool calls and results must pair up across what the thread holds and what the run brings;
        // read only when the run brings more than a user's text, so plain runs pay nothing.
        let openBefore: ReadonlyMap<string, string> = NO_OPEN_CALLS;
        if (readThread !== null) openBefore = openToolCalls(prefix);
        else if (threadId !== null && bringsConversation(request)) {
          openBefore = openToolCalls(await store.recentMessages(threadId, OPEN_CALLS_WINDOW));
        }
        const results = pairToolCalls(request.turns, request.toolResults, openBefore);
        plan = { request, results, prefix, toolsChecked: liveTools !== undefined, epoch: undefined };
        // Held already: no thread, a `reject` run's claim, or a claim granted at once in this process.
        const claimedNow = claimed === undefined || (!leases.fenced && leases.holds(threadId as string, id));
        if (resuming) {
          if (log !== undefined) resumedSeq = await log.lastSeq(id);
          accepted = { ...(existing as RunRecord), status: 'running' };
          started = { inputs: [], committed: [] }; // its input and finished steps are on the thread
        } else {
          const startsNow = lease !== undefined && claimedNow;
          if (!startsNow) {
            lease?.release(); // never hold an instance while waiting for the thread
            lease = undefined;
          }
          accepted =
            !startsNow && existing !== undefined
              ? existing
              : newRun({
                  id,
                  project,
                  agent,
                  version,
                  model: spec.model,
                  threadId,
                  input: request.recordInput,
                  metadata,
                  createdAt: existing?.createdAt ?? now,
                  startedAt: startsNow ? now : null,
                });
          if (startsNow) {
            plan.epoch = epoch;
            const inputs = inputMessages(request, results, id, now);
            writes.started(threadId === null ? NO_MESSAGES : inputs);
            started = { inputs, committed: lazy ? [] : await writes.commit(accepted, NO_MESSAGES) };
          } else if (!lazy && existing === undefined) await writes.commit(accepted, NO_MESSAGES);
        }
      } catch (err) {
        this.#abandon(lease, admission, claimed, newThread, writes, threadId, entrant);
        throw err;
      }
      return this.#launch(
        project,
        intake.options,
        existing !== undefined,
        entrant,
        writes,
        accepted,
        claimed,
        lease,
        started,
        admission,
        pinned,
        plan,
        resumedSeq,
      );
    } finally {
      this.#accepting--;
    }
  }

  /** Lists an accepted run and drives it in the background; the handle its caller is given. */
  #launch(
    project: string,
    options: StartRunOptions,
    /** A background run (already recorded): handed over, not interrupted, when this node closes. */
    queued: boolean,
    entrant: GateEntrant,
    writes: RunWrites,
    accepted: RunRecord,
    claimed: Promise<number | undefined> | undefined,
    lease: Lease | undefined,
    started: Started | undefined,
    admission: RunAdmission,
    pinned: number | undefined,
    plan: Plan,
    resumedSeq: number,
  ): RunHandle {
    const { runId: id, controller } = entrant;
    const callerSignal = options.signal;
    // Listed before the run is driven, which may end it before it first waits; `result` is set
    // before anything else can see the entry.
    const live = {
      project,
      record: accepted,
      controller,
      stream: this.#stream(id, resumedSeq),
      queued,
      unfollow: callerSignal === undefined ? undefined : followCaller(callerSignal, controller),
      timeoutMs: 0,
    } as LiveRun;
    if (this.#closed) controller.abort(new AgentPoolError('RUN_INTERRUPTED', 'the pool is closing'));
    this.#live.set(id, live);
    live.result = this.#drive(
      live,
      accepted,
      claimed,
      entrant,
      lease,
      started,
      admission,
      pinned,
      plan,
      writes,
    );
    return { id, accepted, stream: live.stream, result: live.result };
  }

  /** Gives back what a run refused before it was recorded took, so that it counts for nothing. */
  #abandon(
    lease: Lease | undefined,
    admission: RunAdmission | undefined,
    claimed: Promise<number | undefined> | undefined,
    newThread: NewThread | undefined,
    writes: RunWrites,
    threadId: string | null,
    entrant: GateEntrant,
  ): void {
    lease?.release();
    admission?.withdraw();
    if (newThread !== undefined && !writes.created) this.#deps.history.delete(newThread.id); // never written
    if (threadId !== null) this.#releaseThread(threadId, entrant, claimed);
  }

  /**
   * A new run's event stream, told to the cluster's log when there is one; a resumed run's events
   * go on after those its first node logged (`afterSeq`).
   */
  #stream(runId: string, afterSeq: number): RunEventStream {
    const { replayEvents, replayBytes } = this.#options;
    const log = this.#deps.eventLog;
    return new RunEventStream(
      runId,
      this.#now,
      replayEvents,
      replayBytes,
      log === undefined && afterSeq === 0 ? undefined : { sink: log && sinkOf(log), afterSeq },
    );
  }

  /** The new thread a run asks for with `thread`, checked; undefined when it asks for none. */
  #newThread(
    project: string,
    options: StartRunOptions,
    request: RunRequest,
    now: number,
  ): NewThread | undefined {
    if (options.thread === undefined) return undefined;
    if (options.threadId !== undefined)
      throw validationError('thread', 'cannot be given with threadId: it asks for a new thread');
    if (!request.store)
      throw validationError('thread', 'cannot be given with store: false, which keeps no thread');
    return this.#deps.threads.draft(project, options.thread, now, 'thread');
  }

  /** Admission that must wait (limits to read, a budget to reserve, a shared ledger), measuring the first call when a budget asks. */
  #admit(admitted: Omit<AdmitRequest, 'promptBytes'>, firstCall: FirstCall): Promise<RunAdmission> {
    return this.#deps.governance.admit({
      ...admitted,
      promptBytes: () => this.#firstCallBytes(firstCall, admitted.project),
    });
  }

  /**
   * A run of the project; `RUN_NOT_FOUND` otherwise. A run in flight here that is not yet in the
   * store (a wait or stream run before its first write) is answered as it started.
   */
  async get(project: string, runId: string): Promise<RunRecord> {
    const run = (await this.#deps.store.getRun(runId)) ?? this.#live.get(runId)?.record;
    if (run === undefined || run.project !== project) {
      throw new AgentPoolError('RUN_NOT_FOUND', `run ${JSON.stringify(runId)} not found`, { runId });
    }
    return run;
  }

  /**
   * The run's events after `afterSeq`, live until it ends. A finished run whose events are no
   * longer in memory yields one terminal event rebuilt from its record.
   */
  async events(
    project: string,
    runId: string,
    afterSeq = 0,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<RunEvent>> {
    const live = this.#live.get(runId) ?? this.#recent.get(runId);
    if (live !== undefined && live.project === project) return live.stream.events(afterSeq, signal);
    const run = await this.get(project, runId);
    // Another node runs it, or ran it: its events are in the cluster's log while they are kept.
    const logged = await this.#deps.eventLog?.read(runId, afterSeq, signal);
    if (logged !== undefined) return logged;
    const stream = new RunEventStream(runId, () => run.finishedAt ?? run.createdAt);
    if (run.status === 'succeeded') stream.publish({ type: 'run.finished', run });
    else
      stream.publish({
        type: 'run.failed',
        run,
        error: run.error ?? { code: 'RUN_INTERRUPTED', message: run.status },
      });
    return stream.events(0, signal);
  }

  /**
   * Cancels a queued or running run, on this node or another of its cluster, and returns its
   * terminal record; `RUN_NOT_ACTIVE` when it already ended.
   */
  async cancel(project: string, runId: string): Promise<RunRecord> {
    const live = this.#live.get(runId);
    if (live !== undefined && live.project === project) {
      live.controller.abort(cancelled());
      return live.result;
    }
    const run = await this.get(project, runId);
    const { relay, eventLog, store, clock } = this.#deps;
    if (isTerminal(run.status) || relay === undefined) throw notActive(run);
    // The node holding it cancels it when told; a background run no node has taken yet is
    // cancelled in the store, and the node that takes it finds it ended.
    relay.publish({ type: 'run.cancel', at: clock.now(), runId } as RunCancel);
    const ended = await this.#terminal(runId, eventLog, CANCEL_WAIT_MS);
    if (ended !== undefined) return ended;
    const now = await store.getRun(runId);
    if (now === undefined) throw notActive(run);
    if (isTerminal(now.status)) return now;
    if (now.status !== 'queued') {
      throw new AgentPoolError(
        'RUN_NOT_ACTIVE',
        `run ${runId} did not end within ${CANCEL_WAIT_MS} ms of being cancelled`,
        {
          runId,
          status: now.status,
        },
      );
    }
    const record: RunRecord = {
      ...now,
      status: 'cancelled',
      finishedAt: clock.now(),
      error: describeError(cancelled(), false),
    };
    await store.commitStep(record, []);
    return record;
  }

  /** The run's terminal record once its events end (within `waitMs`); undefined otherwise. */
  async #terminal(
    runId: string,
    log: RunEventLog<RunEvent> | undefined,
    waitMs: number,
  ): Promise<RunRecord | undefined> {
    const signal = AbortSignal.timeout(waitMs);
    const deadline = Date.now() + waitMs;
    if (log !== undefined) {
      try {
        const events = await log.read(runId, 0, signal);
        if (events !== undefined) {
          for await (const event of events) {
            if (event.type === 'run.finished' || event.type === 'run.failed') return event.run;
          }
        }
      } catch {
        // Redis cannot tell: the store can.
      }
    }
    while (Date.now() < deadline) {
      const run = await this.#deps.store.getRun(runId);
      if (run !== undefined && isTerminal(run.status)) return run;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  }

  /**
   * Accepts a background run. In a cluster it is recorded `queued` and put on the queue, which any
   * node takes from (admission happens there: a refusal ends it `failed` with the refusal's code);
   * a run without a thread gets a new thread of its own, so that its finished steps are kept and
   * it can resume on another node if the one running it dies. A node alone starts it at once.
   */
  async startBackground(project: string, agentRef: string, options: StartRunOptions): Promise<RunRecord> {
    const queue = this.#deps.queue;
    if (queue === undefined)
      return (await this.#start(project, agentRef, options, { durable: true })).accepted;
    if (this.#closed) throw new AgentPoolError('POOL_CLOSED', 'the pool is closing: it takes no new runs');
    const load = this.#deps.load;
    if (load !== undefined && load.overloaded) throw load.refusal();
    const request = resolveRunRequest(options);
    const metadata = parseMetadata('metadata', options.metadata);
    const multitask = enumOption('multitask', options.multitask, MULTITASK_STRATEGIES, 'reject');
    const { registry, threads, store, clock } = this.#deps;
    const agent = await registry.get(project, agentRef);
    const now = clock.now();
    // A run without a thread gets one of its own, created with its record like a run's `thread`.
    const newThread =
      this.#newThread(project, options, request, now) ??
      (options.threadId === undefined ? threads.draft(project, {}, now) : undefined);
    const threadId =
      newThread?.id ?? (await threads.get(project, parseId('threadId', options.threadId as string))).id;
    const run = newRun({
      id: newId('run', now),
      project,
      agent,
      version: agent.activeVersion,
      model: agent.spec.model,
      threadId,
      input: request.recordInput,
      metadata,
      createdAt: now,
      startedAt: null,
    });
    await store.createRun(run, [], undefined, newThread);
    const job: BackgroundJob = {
      runId: run.id,
      project,
      request: { agent: agent.id, input: options.input, threadId, multitask, metadata },
    };
    try {
      await queue.add(job);
    } catch (err) {
      const failed: RunRecord = {
        ...run,
        status: 'failed',
        finishedAt: clock.now(),
        error: describeError(err, false),
      };
      await store.commitStep(failed, []).catch(() => undefined);
      throw err;
    }
    return run;
  }

  /**
   * Runs a background run the queue handed this node, and resolves when it ended: from the start
   * when no node started it, after its last committed step when the node that ran it died.
   * A run already ended (cancelled while queued, or finished by a node that died
   * before telling the queue) is left as it is.
   */
  async runBackground(job: BackgroundJob): Promise<void> {
    const { store, clock } = this.#deps;
    const run = await store.getRun(job.runId);
    if (run === undefined || isTerminal(run.status)) return;
    this.#accepting++;
    let handle: RunHandle;
    try {
      // Closing: the job is left to expire and go to another node (settling could mark it done).
      if (this.#closed) await new Promise<never>(() => undefined);
      const { agent, input, threadId, multitask, metadata } = job.request;
      const options = { input, threadId, multitask, metadata } as StartRunOptions;
      handle = await this.#start(job.project, agent, options, { existing: run, durable: true });
    } catch (err) {
      // Refused where it was to run (a quota, a budget, its thread busy, its agent gone).
      const failed: RunRecord = {
        ...run,
        status: 'failed',
        finishedAt: clock.now(),
        error: describeError(err, false),
      };
      await store.commitStep(failed, []);
      this.#observer.runFinished(failed);
      this.#deps.runner.finished(failed);
      return;
    } finally {
      this.#accepting--;
    }
    const ended = await handle.result;
    // Handed over (this node is closing): the job goes to another node once its lock expires;
    // settling here could mark it done, so this never settles.
    if (!isTerminal(ended.status)) await new Promise<never>(() => undefined);
  }

  /**
   * Cancels every run of this node running longer than its agent's `runTimeoutMs` (from when it
   * started, not while it waited for its thread or instance) with `RUN_TIMEOUT`: it ends `failed`
   * with that code, its record committed. Returns the runs it ended. Called by the health monitor.
   */
  expireOverdue(): TimedOutRun[] {
    const now = this.#deps.clock.now();
    const out: TimedOutRun[] = [];
    for (const live of this.#live.values()) {
      const run = live.record;
      if (live.timeoutMs === 0 || run.startedAt === null || live.controller.signal.aborted) continue;
      const elapsedMs = now - run.startedAt;
      if (elapsedMs < live.timeoutMs) continue;
      out.push({
        runId: run.id,
        project: run.project,
        agentId: run.agentId,
        agentName: run.agentName,
        timeoutMs: live.timeoutMs,
        elapsedMs,
      });
      live.controller.abort(
        new AgentPoolError(
          'RUN_TIMEOUT',
          `the run took longer than its agent's runTimeoutMs (${live.timeoutMs} ms)`,
          {
            runId: run.id,
            timeoutMs: live.timeoutMs,
            elapsedMs,
          },
        ),
      );
    }
    return out;
  }

  /**
   * Takes no new runs (`POOL_CLOSED`), interrupts every run in flight, including those still
   * being accepted, and waits for them to commit their terminal status.
   */
  async close(reason: string): Promise<void> {
    this.#closed = true;
    this.#stopRelay();
    while (this.#live.size > 0 || this.#accepting > 0) {
      const results = [...this.#live.values()].map((live) => {
        // A background run of a cluster stops where its last step was committed, and another node
        // resumes it from the queue; every other run ends interrupted.
        live.controller.abort(live.queued ? handedOver() : new AgentPoolError('RUN_INTERRUPTED', reason));
        return live.result;
      });
      await Promise.all(results);
      if (results.length === 0) await new Promise((resolve) => setImmediate(resolve)); // let start() calls settle
    }
  }

  /**
   * Takes the run from accepted to terminal; `lease` and `started` are set when it started already.
   * Resolves with its terminal record (or, handed over, the record as it stopped); never rejects.
   * Not async: a run that holds its thread and instance and started has nothing to wait for before
   * its first model call, and its end is chained to the runner's promise; any other goes through
   * {@link #driveWaiting}.
   */
  #drive(
    live: LiveRun,
    accepted: RunRecord,
    /** The thread's claim while it may be pending; undefined when the run holds its thread or has none. */
    claimed: Promise<number | undefined> | undefined,
    entrant: GateEntrant,
    lease: Lease | undefined,
    started: Started | undefined,
    admission: RunAdmission,
    /** A rollout's candidate version the run was routed to; the active version when undefined. */
    pinned: number | undefined,
    plan: Plan,
    writes: RunWrites,
  ): Promise<RunRecord> {
    if (
      claimed !== undefined ||
      lease === undefined ||
      started === undefined ||
      live.controller.signal.aborted
    )
      return this.#driveWaiting(
        live,
        accepted,
        claimed,
        entrant,
        lease,
        started,
        admission,
        pinned,
        plan,
        writes,
      );
    const { runner } = this.#deps;
    const signal = entrant.controller.signal;
    let running: Promise<RunRecord>;
    try {
      running = this.#execute(live, accepted, lease, started, admission, plan, writes);
    } catch (err) {
      running = runner.fail(accepted, err, signal, live.stream, writes);
    }
    const held = lease;
    return running.then(
      (ended) => this.#ended(live, ended, entrant, held, admission, plan),
      (err: unknown) =>
        // The runner's own failure to end the run (its terminal write failed): tried once more.
        runner.fail(accepted, err, signal, live.stream, writes).then(
          (ended) => this.#ended(live, ended, entrant, held, admission, plan),
          (failed: unknown) => {
            this.#release(live, entrant, held, admission, true, undefined, plan);
            const rethrow = (): never => {
              throw failed;
            };
            const flushing = this.#deps.governance.flush();
            return flushing === undefined ? rethrow() : flushing.then(rethrow);
          },
        ),
    );
  }

  /** {@link #drive} for a run that waits for its thread or instance, or is written before it starts. */
  async #driveWaiting(
    live: LiveRun,
    accepted: RunRecord,
    claimed: Promise<number | undefined> | undefined,
    entrant: GateEntrant,
    lease: Lease | undefined,
    started: Started | undefined,
    admission: RunAdmission,
    pinned: number | undefined,
    plan: Plan,
    writes: RunWrites,
  ): Promise<RunRecord> {
    const { pool, runner, clock } = this.#deps;
    const signal = entrant.controller.signal;
    const threadId = accepted.threadId;
    let holdsThread = claimed === undefined;
    let run = accepted;
    let ended: RunRecord;
    try {
      if (claimed !== undefined) {
        writes.fence = await claimed;
        holdsThread = true;
      }
      signal.throwIfAborted();
      if (lease === undefined) {
        lease = await pool.acquire(run.project, run.agentId, {
          signal,
          ...(pinned !== undefined && { version: pinned }),
        });
        if (!plan.toolsChecked) {
          // Checked before the input is committed, so a refused run leaves the thread as it was.
          const tools = lease.instance.resources?.tools ?? [];
          checkToolNames(plan.request.clientTools, tools, plan.request.settings.toolChoice);
        }
      }
      if (started === undefined) {
        const now = clock.now();
        const inputs = inputMessages(plan.request, plan.results, run.id, now);
        const running: RunRecord = {
          ...run,
          status: 'running',
          startedAt: now,
          agentVersion: lease.agent.activeVersion,
          model: lease.agent.spec.model,
        };
        writes.started(threadId === null ? NO_MESSAGES : inputs);
        // A run recorded while it waited is updated now; a lazy one is written with its first step.
        started = { inputs, committed: writes.created ? await writes.commit(running, NO_MESSAGES) : [] };
        run = running; // the input is committed or pending: a failure from here on answers it with a note
      }
      ended = await this.#execute(live, run, lease, started, admission, plan, writes);
    } catch (err) {
      ended = await runner.fail(run, err, signal, live.stream, writes);
    } finally {
      this.#release(live, entrant, lease, admission, holdsThread, claimed, plan);
      const flushing = this.#deps.governance.flush();
      if (flushing !== undefined) await flushing;
    }
    return this.#told(ended, lease);
  }

  /** Runs a started run that holds its instance and thread: its history, then the runner. */
  #execute(
    live: LiveRun,
    run: RunRecord,
    lease: Lease,
    started: Started,
    admission: RunAdmission,
    plan: Plan,
    writes: RunWrites,
  ): Promise<RunRecord> {
    live.record = run;
    live.timeoutMs = lease.agent.spec.runTimeoutMs ?? 0;
    const resources = lease.instance.resources;
    if (resources === undefined) {
      throw new AgentPoolError('ACTIVATION_FAILED', 'the pool has no model resolver: runs need one');
    }
    live.stream.publish({ type: 'run.started', run });
    const threadId = run.threadId;
    let history: readonly (MessageRecord | NewMessage)[] | Promise<readonly (MessageRecord | NewMessage)[]>;
    if (threadId === null) history = [...plan.prefix, ...started.inputs];
    else if (writes.newThread)
      history = promptHistory(started.inputs); // a thread its first write creates
    else if (writes.created) history = this.#history(run.project, threadId, started).then(promptHistory);
    else {
      const pending = this.#pendingHistory(run.project, threadId, started.inputs, plan.epoch);
      history = pending instanceof Promise ? pending.then(promptHistory) : promptHistory(pending);
    }
    const input: RunInput = {
      run,
      spec: lease.agent.spec,
      models: resources.models,
      tools: resources.tools,
      history: NO_MESSAGES,
      signal: live.controller.signal,
      events: live.stream,
      admission,
      instructions: plan.request.instructions,
      clientTools: plan.request.clientTools,
      settings: plan.request.settings,
      writes,
      hooks: resources.hooks,
    };
    const { runner } = this.#deps;
    if (!(history instanceof Promise)) {
      input.history = history;
      return runner.execute(input);
    }
    return history.then((read) => {
      input.history = read;
      return runner.execute(input);
    });
  }

  /** The end of a run driven without an async frame: what it held given back, then it is told. */
  #ended(
    live: LiveRun,
    ended: RunRecord,
    entrant: GateEntrant,
    lease: Lease,
    admission: RunAdmission,
    plan: Plan,
  ): RunRecord | Promise<RunRecord> {
    this.#release(live, entrant, lease, admission, true, undefined, plan);
    return this.#finished(ended, lease);
  }

  /**
   * Gives back what a run held (instance, admission, thread) and retires it. A shared ledger (a
   * cluster's Redis) applies the run's give-backs without making the run wait for them.
   */
  #release(
    live: LiveRun,
    entrant: GateEntrant,
    lease: Lease | undefined,
    admission: RunAdmission,
    holdsThread: boolean,
    claimed: Promise<number | undefined> | undefined,
    plan: Plan,
  ): void {
    lease?.release();
    admission.release();
    const threadId = live.record.threadId;
    if (threadId !== null) {
      if (holdsThread) this.#deps.leases.release(threadId, entrant);
      else this.#releaseThread(threadId, entrant, claimed);
    }
    this.#retire(live, plan.request.store);
  }

  /**
   * Tells the observers and hooks of a run that ended, once its give-backs reached a shared ledger:
   * its caller waits for them, so a client that starts its next run on the answer of this one finds
   * this one's place free on every node. Never fails: an unreachable Redis gets them later, and the
   * holds expire anyway.
   */
  #finished(ended: RunRecord, lease: Lease | undefined): RunRecord | Promise<RunRecord> {
    const flushing = this.#deps.governance.flush();
    if (flushing !== undefined) return flushing.then(() => this.#told(ended, lease));
    return this.#told(ended, lease);
  }

  #told(ended: RunRecord, lease: Lease | undefined): RunRecord {
    if (isTerminal(ended.status)) {
      this.#observer.runFinished(ended);
      this.#deps.runner.finished(ended, lease?.instance.resources?.hooks);
    }
    return ended;
  }

  /** Gives the thread back once the run holds it: now when `claimed` is undefined, else when it resolves. */
  #releaseThread(
    threadId: string,
    entrant: GateEntrant,
    claimed: Promise<number | undefined> | undefined,
  ): void {
    const { leases } = this.#deps;
    if (claimed === undefined) leases.release(threadId, entrant);
    else claimed.then(() => leases.release(threadId, entrant)).catch(() => undefined);
  }

  /** Claims the thread for the run; a THREAD_BUSY refusal is counted. */
  #claim(threadId: string, entrant: GateEntrant, strategy: MultitaskStrategy): Promise<number | undefined> {
    const claimed = this.#deps.leases.claim(threadId, entrant, strategy);
    claimed.catch((err: unknown) => {
      if (isAgentPoolError(err, 'THREAD_BUSY')) this.#observer.threadBusy();
    });
    return claimed;
  }

  /**
   * UTF-8 bytes the run's first model call will send, for its budget reservation at admission:
   * the thread's recent history as the runner will send it, the input, the tool definitions. The
   * history is read through the cache and left there for the run, so a cold thread costs the one
   * store read the run makes anyway. A cold start resolves the tools' definitions from the
   * catalog (the activation will resolve the same); a reference that fails to resolve is counted
   * as nothing here and fails the activation.
   */
  async #firstCallBytes(call: FirstCall, project: string): Promise<number> {
    const { spec, thread, request } = call;
    const inputs = inputMessages(request, undefined, call.runId, call.now);
    let messages: readonly (MessageRecord | NewMessage)[] = [...call.prefix, ...inputs];
    if (call.known !== undefined || thread !== undefined) {
      const recent = call.known ?? (await this.#recentOf(thread as ThreadRecord, call.epoch));
      messages = promptHistory(this.#endingWith(recent, inputs));
    }
    let tools: readonly Tool[] | undefined = call.lease?.instance.resources?.tools;
    if (tools === undefined && spec.tools.length > 0 && this.#deps.resolveTools !== undefined) {
      tools = await this.#deps.resolveTools(spec.tools, project).catch(() => undefined);
    }
    return (
      promptBytes(toPrompt([spec.instructions, request.instructions], messages), [
        ...toolDefinitions(tools ?? []),
        ...clientToolDefinitions(request.clientTools),
      ]) + (request.toolResults.length === 0 ? 0 : Buffer.byteLength(JSON.stringify(request.toolResults)))
    );
  }

  /** A thread's recent messages (at most `historyLimit`), through the cache, which keeps them. */
  async #recentOf(thread: ThreadRecord, epoch: number | undefined): Promise<MessageRecord[]> {
    const cache = this.#deps.history;
    const cached = cache.get(thread.id, thread.messageCount, epoch);
    if (cached !== undefined) return cached;
    const read =
      thread.messageCount === 0
        ? []
        : await this.#deps.store.recentMessages(thread.id, this.#options.historyLimit);
    cache.set(thread.project, thread.id, read, epoch);
    return read;
  }

  /**
   * The thread's recent messages, ending with the run's committed input: from the cache when it
   * is current (the input's commit was added to it).
   */
  async #history(project: string, threadId: string, started: Started): Promise<MessageRecord[]> {
    const lastSeq = started.committed.at(-1)?.seq;
    const cached = lastSeq === undefined ? undefined : this.#deps.history.get(threadId, lastSeq);
    if (cached !== undefined) return cached;
    const read = await this.#deps.store.recentMessages(threadId, this.#options.historyLimit);
    this.#deps.history.set(project, threadId, read);
    return read;
  }

  /**
   * The recent messages of a thread the run holds, followed by its input, not yet written: from
   * the cache without a read (nor a promise) while nobody else wrote to the store, else checked
   * against the thread.
   */
  #pendingHistory(
    project: string,
    threadId: string,
    inputs: readonly NewMessage[],
    accepted: number | undefined,
  ): (MessageRecord | NewMessage)[] | Promise<(MessageRecord | NewMessage)[]> {
    const epoch = accepted ?? this.#deps.store.writeEpoch?.();
    const before = this.#deps.history.known(project, threadId, epoch);
    if (before !== undefined) return this.#endingWith(before, inputs);
    return this.#deps.threads
      .get(project, threadId)
      .then((thread) => this.#recentOf(thread, epoch))
      .then((recent) => this.#endingWith(recent, inputs));
  }

  /** The newest of `before` that fit in the history limit with `inputs`, then `inputs`: what a first call sends. */
  #endingWith(
    before: readonly MessageRecord[],
    inputs: readonly NewMessage[],
  ): (MessageRecord | NewMessage)[] {
    const kept = Math.max(0, this.#options.historyLimit - inputs.length);
    const out: (MessageRecord | NewMessage)[] = [];
    for (let i = Math.max(0, before.length - kept); i < before.length; i++)
      out.push(before[i] as MessageRecord);
    for (const input of inputs) out.push(input);
    return out;
  }

  /**
   * Forgets the replayable events of the project's runs that finished before `before`: retention
   * deleted them (or is deleting them), and a deleted run's events must not be served.
   */
  forgetFinishedBefore(project: string, before: number): void {
    for (const [runId, recent] of this.#recent) {
      if (recent.project !== project || recent.finishedAt >= before) continue;
      this.#recentBytes -= recent.stream.bytes;
      this.#recent.delete(runId);
    }
  }

  /**
   * Forgets a finished run and stops following its caller; its events stay replayable unless it
   * keeps nothing (`keep` false).
   */
  #retire(live: LiveRun, keep: boolean): void {
    const runId = live.record.id;
    live.unfollow?.();
    this.#live.delete(runId);
    if (this.#live.size === 0 && this.#idleWaiters.length > 0)
      for (const wake of this.#idleWaiters.splice(0)) wake();
    if (!keep) return;
    this.#recent.set(runId, { project: live.project, stream: live.stream, finishedAt: this.#now() });
    this.#recentBytes += live.stream.bytes;
    const { recentStreams, recentStreamsBytes } = this.#options;
    while (this.#recent.size > recentStreams || this.#recentBytes > recentStreamsBytes) {
      const oldestId = this.#oldestRecent.take() as string;
      this.#recentBytes -= (this.#recent.get(oldestId) as RecentStream).stream.bytes;
      this.#recent.delete(oldestId);
    }
  }
}

/**
 * A thread's messages as the model is sent them: from the first user turn, so a truncated history
 * never opens mid tool exchange; and a user turn left without an answer (its run was stopped by a
 * crash, before it could write the note a failed run leaves) followed by a note saying so, so the
 * model never sees two user turns in a row.
 */
function promptHistory(
  messages: readonly (MessageRecord | NewMessage)[],
): readonly (MessageRecord | NewMessage)[] {
  let first = 0;
  while (first < messages.length && messages[first]?.role !== 'user') first++;
  const from = first === 0 || first === messages.length ? messages : messages.slice(first);
  let i = 0;
  while (i < from.length && !unanswered(from, i)) i++;
  if (i === from.length) return from;
  const out: (MessageRecord | NewMessage)[] = [];
  for (i = 0; i < from.length; i++) {
    const m = from[i] as MessageRecord | NewMessage;
    out.push(m);
    if (unanswered(from, i)) out.push(unansweredNote('', m.runId, null, m.createdAt));
  }
  return out;
}

/** Whether the message at `i` is a user turn followed by another user turn. */
function unanswered(messages: readonly (MessageRecord | NewMessage)[], i: number): boolean {
  return messages[i]?.role === 'user' && messages[i + 1]?.role === 'user';
}

/** Tells a cluster's run event log of each event. */
function sinkOf(log: RunEventLog<RunEvent>): (event: RunEvent) => void {
  return (event) => log.append(event);
}

/** Cancels the run when its caller's signal aborts (or has already); returns what stops listening. */
function followCaller(signal: AbortSignal, controller: AbortController): () => void {
  const onAbort = (): void => controller.abort(new AgentPoolError('RUN_CANCELLED', 'the caller went away'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort(); // it left while the run was being accepted
  return () => signal.removeEventListener('abort', onAbort);
}
