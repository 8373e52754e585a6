/**
 * Store ports: the small interfaces the core depends on. Adapters (memory, sqlite, later redis and
 * postgres) implement them and are checked by one shared conformance suite.
 *
 * The store treats an agent's spec as an opaque JSON object, except for the few fields it indexes
 * (labels for filtering, tier for prewarming, ttlSeconds for expiry), declared by {@link IndexedSpec}.
 * A rollout's flag is opaque JSON too ({@link StoredFlag}): governance/flags.ts defines and checks
 * it, and the store, a layer below, only keeps it.
 */

/** The fields of an agent spec that a store indexes. The rest is stored as JSON, untouched. */
export interface IndexedSpec {
  readonly labels: Readonly<Record<string, string>>;
  readonly tier: string;
  readonly ttlSeconds?: number | undefined;
}

/** A feature-flag strategy as the store keeps it: a JSON object whose `strategy` names its kind. */
export type StoredFlag = Readonly<Record<string, unknown>> & { readonly strategy: string };

/**
 * A canary rollout: a version that is not active but takes the share of runs its flag selects,
 * until it is promoted (made active) or aborted.
 */
export interface AgentRollout<F extends StoredFlag = StoredFlag> {
  /** The version on trial; never the active one. */
  readonly candidateVersion: number;
  /** Which runs go to the candidate. */
  readonly flag: F;
  /** When the rollout started, epoch ms: compare versions' run statistics from here on. */
  readonly startedAt: number;
  /** When `flag` took effect, epoch ms (the origin of a gradual ramp); `startedAt` until it is changed. */
  readonly flagStartedAt: number;
}

/** One persisted agent: identity, its active version's spec, and bookkeeping. */
export interface AgentRecord<S extends IndexedSpec = IndexedSpec, F extends StoredFlag = StoredFlag> {
  readonly id: string;
  readonly project: string;
  readonly name: string;
  /** The version runs use. */
  readonly activeVersion: number;
  /** The highest version number; versions are 1..latestVersion and never change. */
  readonly latestVersion: number;
  /** The spec of the active version. */
  readonly spec: S;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When the agent was last used (activated or released), epoch ms. */
  readonly lastUsedAt: number;
  /** For agents with `ttlSeconds`: when they expire if still unused, epoch ms; otherwise null. */
  readonly expiresAt: number | null;
  /** The rollout in progress, or null. */
  readonly rollout: AgentRollout<F> | null;
}

/** One immutable version of an agent's spec. */
export interface AgentVersionRecord<S extends IndexedSpec = IndexedSpec> {
  readonly agentId: string;
  readonly version: number;
  readonly spec: S;
  readonly createdAt: number;
}

/**
 * A page of results and the cursor of the next page (null on the last page). A page holds at most
 * its query's `limit` items and stops early, before about `PAGE_MAX_BYTES` (1 MiB) of JSON
 * (store/paging.ts); its cursor then continues right after the last item returned.
 */
export interface Page<T> {
  readonly data: T[];
  readonly nextCursor: string | null;
}

/** Options of {@link AgentStore.list}. */
export interface ListAgentsQuery {
  /** 1..1000. */
  readonly limit: number;
  /** An opaque cursor from a previous page. */
  readonly cursor?: string | undefined;
  /** Only agents carrying every one of these labels with these values. */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Only agents whose name contains this text (case-sensitive; names are lowercase slugs). */
  readonly q?: string | undefined;
}

/** What {@link AgentStore.create} needs. */
export interface NewAgent<S extends IndexedSpec = IndexedSpec> {
  readonly id: string;
  readonly project: string;
  readonly name: string;
  readonly spec: S;
  readonly now: number;
}

/** Options of {@link AgentStore.addVersion}. */
export interface AddVersionOptions<F extends StoredFlag = StoredFlag> {
  /**
   * Instead of making the new version active, start a rollout with this flag whose candidate is
   * the new version (`startedAt` = `flagStartedAt` = now), in the same write.
   */
  readonly rollout?: F | undefined;
}

/** Options of {@link AgentStore.setRollout}. */
export interface SetRolloutOptions {
  /** Also make this version active, in the same write (promotion). */
  readonly activate?: number | undefined;
}

/**
 * Agent definitions and their versions.
 * Errors: `AGENT_EXISTS` from create when (project, name) is taken; `VERSION_CONFLICT` from
 * addVersion and setRollout when another writer got there first; `AGENT_NOT_FOUND` /
 * `VERSION_NOT_FOUND` from writes that name a missing agent or version; `ROLLOUT_IN_PROGRESS` from
 * writes that would change the active version of an agent with a rollout (only promotion, through
 * setRollout, may).
 *
 * Record-returning methods take the spec type `S` and the rollout flag type `F` the caller stored;
 * the store does not check them beyond {@link IndexedSpec}.
 */
export interface AgentStore {
  /** Creates an agent whose version 1 is active. Atomic: of two concurrent creates of one name, one wins. */
  create<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    agent: NewAgent<S>,
  ): Promise<AgentRecord<S, F>>;
  getById<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
  ): Promise<AgentRecord<S, F> | undefined>;
  getByName<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    name: string,
  ): Promise<AgentRecord<S, F> | undefined>;
  /** A project's agents ordered by name. */
  list<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    query: ListAgentsQuery,
  ): Promise<Page<AgentRecord<S, F>>>;
  /** Agents of every project with the given tier, ordered by id; used to prewarm the hot set. */
  listByTier<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    tier: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentRecord<S, F>>>;
  /** Number of agents in a project. */
  count(project: string): Promise<number>;
  /**
   * Appends version `expectedLatest + 1` with `spec` and makes it active, provided the agent's
   * latest version is still `expectedLatest` (else `VERSION_CONFLICT`). With `options.rollout` the
   * new version becomes a rollout's candidate instead. Either way an agent that already has a
   * rollout refuses (`ROLLOUT_IN_PROGRESS`).
   */
  addVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedLatest: number,
    spec: S,
    now: number,
    options?: AddVersionOptions<F>,
  ): Promise<AgentRecord<S, F>>;
  /**
   * Makes an existing version the active one (rollback); `ROLLOUT_IN_PROGRESS` while a rollout runs,
   * unless `version` is already the active one.
   */
  activateVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    version: number,
    now: number,
  ): Promise<AgentRecord<S, F>>;
  /**
   * Starts, changes or ends (`null`) an agent's rollout, provided the candidate of its current
   * rollout is still `expectedCandidate` (null: no rollout), else `VERSION_CONFLICT`. The candidate
   * must be an existing version (`VERSION_NOT_FOUND`) other than the active one after the write
   * (`VALIDATION_FAILED`). With `options.activate`, that version also becomes active: a promotion.
   */
  setRollout<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedCandidate: number | null,
    rollout: AgentRollout<F> | null,
    now: number,
    options?: SetRolloutOptions,
  ): Promise<AgentRecord<S, F>>;
  getVersion<S extends IndexedSpec>(id: string, version: number): Promise<AgentVersionRecord<S> | undefined>;
  /** Versions newest first. */
  listVersions<S extends IndexedSpec>(
    id: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentVersionRecord<S>>>;
  /** Deletes an agent and all its versions; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Records use; for agents with a ttl this pushes `expiresAt` to `at + ttlSeconds`. */
  touch(id: string, at: number): Promise<void>;
  /**
   * Records many uses in one write (the registry's coalesced `lastUsedAt`): each agent's
   * `lastUsedAt` moves to `at` unless it is already later (it never moves back), and an agent with
   * a ttl expires `ttlSeconds` after it. Unknown ids are skipped (the agent was deleted meanwhile).
   * Not a definition change: no version, `updatedAt` or change-feed entry.
   */
  recordUse(uses: readonly AgentUse[]): Promise<void>;
  /**
   * An agent's persisted usage (what {@link recordUse} added up), or undefined when the agent is
   * unknown or was never used. Deleting the agent deletes its usage.
   */
  getUsage(id: string): Promise<AgentUsageRecord | undefined>;
  /**
   * Used agents, of one project or (without `project`) of every project, ordered by `sort`
   * (descending; ties by id), keyset-paged like every listing.
   */
  listUsage(query: ListUsageQuery): Promise<Page<AgentUsageRecord>>;
  /** Agents with a ttl whose `expiresAt` ≤ now, oldest first. */
  listExpired<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    now: number,
    limit: number,
  ): Promise<AgentRecord<S, F>[]>;
  /**
   * Deletes up to `limit` (1..1000) agents of a project, with their versions, labels and rollouts,
   * in one short transaction; returns how many, 0 once the project has none. Deleting a project
   * calls it until 0, so no single write holds the store for long.
   */
  deleteProjectAgents(project: string, limit: number): Promise<number>;
  /** Releases connections and file handles; further calls fail. */
  close(): Promise<void>;
  /**
   * Changes other writers made to this store's definitions: present when other processes may write
   * to the same database (SQLite file, PostgreSQL), absent when only this store instance can (memory).
   */
  readonly changeFeed?: AgentChangeFeed | undefined;
}

/** One use of an agent, for {@link AgentStore.recordUse}. */
export interface AgentUse {
  readonly id: string;
  /** When it was used, epoch ms. */
  readonly at: number;
  /** Run figures to add to the agent's persisted usage; absent: only `lastUsedAt` moves. */
  readonly runs?: AgentRunTotals | undefined;
}

/** Figures of an agent's finished runs, summed (a delta in {@link AgentUse}, a total in {@link AgentUsageRecord}). */
export interface AgentRunTotals {
  /** Runs that reached a terminal status. */
  readonly uses: number;
  /** Runs that `succeeded`. */
  readonly successes: number;
  /** Runs that `failed` (cancelled and interrupted runs are neither). */
  readonly failures: number;
  /** Sum of `finishedAt - startedAt` over runs that started, ms. */
  readonly latencyMsTotal: number;
  /** Runs counted in `latencyMsTotal`. */
  readonly latencyCount: number;
  /** Sum of the runs' cost, USD. */
  readonly costUsd: number;
}

/** One agent's persisted usage. */
export interface AgentUsageRecord extends AgentRunTotals {
  readonly agentId: string;
  readonly project: string;
  readonly name: string;
  /** The latest use recorded through {@link AgentStore.recordUse}, epoch ms. */
  readonly lastUsedAt: number;
}

/** Orders of {@link AgentStore.listUsage}: most uses, most recently used, most failures, highest cost. */
export const USAGE_SORTS = ['uses', 'recent', 'failures', 'cost'] as const;
/** One of {@link USAGE_SORTS}. */
export type UsageSort = (typeof USAGE_SORTS)[number];

/** Options of {@link AgentStore.listUsage}. */
export interface ListUsageQuery {
  /** Only this project's agents; every project's when absent. */
  readonly project?: string | undefined;
  readonly sort: UsageSort;
  /** 1..1000. */
  readonly limit: number;
  /** An opaque cursor from a previous page of the same sort. */
  readonly cursor?: string | undefined;
}

/**
 * A definition change made through another store instance (another process on the same database),
 * described by the agent's state after it, not by what changed: several changes between two reads
 * arrive as one.
 */
export type AgentChange<F extends StoredFlag = StoredFlag> =
  | {
      /** Created or changed (a version added or activated, a rollout started, changed or ended). */
      readonly type: 'written';
      readonly id: string;
      readonly project: string;
      readonly name: string;
      readonly activeVersion: number;
      readonly latestVersion: number;
      readonly rollout: AgentRollout<F> | null;
    }
  | { readonly type: 'deleted'; readonly id: string; readonly project: string; readonly name: string };

/** A page of {@link AgentChangeFeed.changesSince}. */
export interface AgentChangePage<F extends StoredFlag = StoredFlag> {
  /** Oldest first. */
  readonly changes: AgentChange<F>[];
  /** Where the next read continues: after the last change returned, or the head when none follow. */
  readonly cursor: string;
  /** True when the page was full and more changes may follow at `cursor`. */
  readonly more: boolean;
  /**
   * False when the store no longer holds the whole history after the cursor asked for (it keeps a
   * bounded history of deletions): deletions may be missing, and a watcher should forget what it
   * derived from the agents' old state.
   */
  readonly complete: boolean;
}

/**
 * The definition changes other writers made, in the order they committed, so that a process serves
 * the version another one (`agentpool apply -f`, another node) activated. Writes made through this
 * store instance are not reported: its registry announced them already.
 */
export interface AgentChangeFeed {
  /** The cursor of the latest change: a watcher starts here. */
  head(): Promise<string>;
  /**
   * Cheap and synchronous, for the start of every run: false when no writer changed a definition
   * after `cursor` (SQLite: the revision counter still equals it; PostgreSQL could keep a flag set
   * by LISTEN/NOTIFY); true when one may have.
   */
  maybeChangedSince(cursor: string): boolean;
  /** The changes after `cursor`, oldest first, at most `limit` (1..1000). */
  changesSince<F extends StoredFlag = StoredFlag>(cursor: string, limit: number): Promise<AgentChangePage<F>>;
}

// ── threads, messages and runs ─────────────────────────────────────────────

/** A conversation: an ordered, append-only list of messages in a project. */
export interface ThreadRecord {
  readonly id: string;
  readonly project: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Delete the thread after this long without a new message; null keeps it. */
  readonly ttlSeconds: number | null;
  /** `updatedAt + ttlSeconds`, or null. */
  readonly expiresAt: number | null;
  readonly messageCount: number;
  readonly createdAt: number;
  /** When the last message was appended (or the thread created). */
  readonly updatedAt: number;
}

/** What {@link RunStore.createThread} needs. */
export interface NewThread {
  readonly id: string;
  readonly project: string;
  readonly metadata: Record<string, unknown>;
  readonly ttlSeconds: number | null;
  readonly now: number;
}

/** Who wrote a message. */
export type MessageRole = 'system' | 'user' | 'assistant' | 'tool';

/** One message of a thread. `content` is JSON whose shape the run layer defines per role. */
export interface MessageRecord {
  readonly id: string;
  readonly threadId: string;
  /** 1, 2, 3 … in the thread, without gaps: the order of the conversation. */
  readonly seq: number;
  readonly role: MessageRole;
  readonly content: unknown;
  /** The run that wrote it; null for messages added outside a run. */
  readonly runId: string | null;
  readonly createdAt: number;
}

/** A message to append; the store assigns `threadId` and `seq`. */
export interface NewMessage {
  readonly id: string;
  readonly role: MessageRole;
  readonly content: unknown;
  readonly runId: string | null;
  readonly createdAt: number;
}

/** Every status of a run; the last four are terminal. */
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

/** One execution of an agent. */
export interface RunRecord {
  readonly id: string;
  readonly project: string;
  readonly agentId: string;
  readonly agentName: string;
  readonly agentVersion: number;
  /** The thread it runs on; null for a stateless run. */
  readonly threadId: string | null;
  readonly status: RunStatus;
  /** The user input that started it. */
  readonly input: string;
  /** The final answer, when it succeeded. */
  readonly output: string | null;
  /** `provider/model-id` that answered. */
  readonly model: string;
  /** Finished steps (model calls). */
  readonly steps: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Cost in USD from the price table. */
  readonly cost: number;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

/** How the runs of one agent version went. */
export interface VersionStats {
  readonly version: number;
  /** Terminal runs counted. */
  readonly runs: number;
  readonly succeeded: number;
  /** `failed` and `interrupted` runs. */
  readonly failed: number;
  readonly cancelled: number;
  /** `succeeded / (succeeded + failed)`; null without either (cancelled runs say nothing of quality). */
  readonly successRate: number | null;
  /** Median of `finishedAt - startedAt`, ms (nearest rank); null when no run started. */
  readonly p50Ms: number | null;
  /** 99th percentile of `finishedAt - startedAt`, ms (nearest rank); null when no run started. */
  readonly p99Ms: number | null;
}

/**
 * Threads, their messages, and runs, kept together so that a finished step commits its messages
 * and its run record atomically. Errors: `THREAD_NOT_FOUND` / `RUN_NOT_FOUND` from writes that
 * name a missing thread or run; `VALIDATION_FAILED` for a bad cursor or limit (1..1000);
 * `LEASE_LOST` from a write whose fencing token is stale.
 *
 * **Fencing.** Each thread keeps a fence (an integer, 0 when the thread is created; not part of
 * {@link ThreadRecord}). A write of a thread run may carry `fence`, the token of the thread lease
 * its run holds (coordination/: strictly increasing per thread across the cluster). The store
 * accepts it only when the thread's fence is ≤ `fence`, raising the thread's fence to `fence` in the
 * same transaction; otherwise it refuses with `LEASE_LOST` and writes nothing. So a run whose lease
 * expired (its node paused, cut off) cannot write into a thread another run now holds: the check
 * is made by the store that holds the data, not by the client. Writes without `fence` are not
 * checked (a single node, where the in-process gate is the only writer). Stateless runs have no
 * thread to fence: a `fence` given with one is ignored.
 *
 * **Nodes.** An adapter constructed with a `nodeId` stamps it on every run it creates or commits
 * (null without one); `interruptUnfinished(now, { node })` then ends only that node's runs. The
 * node is not part of {@link RunRecord}: it says where a run executes, for recovery, not what it is.
 */
export interface RunStore {
  createThread(thread: NewThread): Promise<ThreadRecord>;
  getThread(id: string): Promise<ThreadRecord | undefined>;
  /** Deletes a thread with its messages and runs; false when absent. */
  deleteThread(id: string): Promise<boolean>;
  /** Messages in `seq` order, after the cursor. */
  listMessages(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<MessageRecord>>;
  /** The last `limit` messages of a thread, in `seq` order (what a run sends to the model). */
  recentMessages(threadId: string, limit: number): Promise<MessageRecord[]>;
  /** Threads whose `expiresAt` ≤ now, oldest first. */
  listExpiredThreads(now: number, limit: number): Promise<ThreadRecord[]>;
  /**
   * A number that changes whenever another connection or process writes to this store, when the
   * store can tell: while it stays the same, what this process cached of a thread after its own
   * writes is still the thread. SQLite answers its connection's `PRAGMA data_version`; a memory
   * store, which no one else writes, a constant. Absent (PostgreSQL): a cache is checked against
   * the thread's `messageCount` instead.
   */
  writeEpoch?(): number;

  /**
   * Creates a run and, atomically, appends `messages` to its thread (the user's input). A run
   * without a thread takes no messages. With `fence` (see Fencing above) a stale token fails with
   * `LEASE_LOST`, writing nothing. With `thread`, that thread (the run's `threadId`) is created
   * first, in the same transaction: a run on a new thread is one write (a taken id is
   * `VALIDATION_FAILED`, writing nothing).
   */
  createRun(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
    thread?: NewThread,
  ): Promise<{ run: RunRecord; messages: MessageRecord[] }>;
  getRun(id: string): Promise<RunRecord | undefined>;
  /** A thread's runs, newest first. */
  listRuns(threadId: string, query: { limit: number; cursor?: string | undefined }): Promise<Page<RunRecord>>;
  /**
   * Replaces the run record and appends `messages` to its thread in one transaction: a finished
   * step is either wholly stored or not at all. Appending moves the thread's `updatedAt` (to the
   * last message's `createdAt`, never backwards) and its expiry. A run never changes thread, and a
   * stateless run takes no messages (`VALIDATION_FAILED`); when the run's thread was deleted the
   * error is `THREAD_NOT_FOUND`. Reads of an unknown thread return empty results. With `fence`
   * (see Fencing above) a stale token fails with `LEASE_LOST`, writing nothing.
   */
  commitStep(run: RunRecord, messages: readonly NewMessage[], fence?: number): Promise<MessageRecord[]>;
  /**
   * The summed `cost` of the project's runs created at or after `since`: what a budget window has
   * spent, read when a pool starts using that window.
   */
  costSince(project: string, since: number): Promise<number>;
  /**
   * Success and latency per version of one agent, over its terminal runs created at or after
   * `since` (at most the 10,000 most recent, a bound on the cost), ordered by version: what
   * an operator compares before promoting or aborting a rollout.
   */
  versionStats(project: string, agentId: string, since: number): Promise<VersionStats[]>;
  /**
   * Marks `queued` and `running` runs `interrupted` (crash recovery); returns how many. Every such
   * run without `options.node` (a single node's start-up), only those last stamped by that node
   * with it (a cluster's sweep of a dead node; the error then names the node).
   */
  interruptUnfinished(now: number, options?: InterruptOptions): Promise<number>;
  /** How many runs the project holds, stateless and on threads. */
  countProjectRuns(project: string): Promise<number>;
  /**
   * Deletes up to `limit` (1..1000) of the project's runs, stateless or on threads, in one short
   * transaction; returns how many, 0 once the project has none.
   */
  deleteProjectRuns(project: string, limit: number): Promise<number>;
  /**
   * One bounded step of counting the project's threads: call again with `nextCursor` until it is
   * null and add up the counts. An adapter without an index on a thread's project examines at
   * most `limit` (1..1000) threads of any project per step, so a step may count none and go on.
   */
  countProjectThreads(
    project: string,
    query: ProjectWalk,
  ): Promise<{ count: number; nextCursor: string | null }>;
  /**
   * One bounded step of deleting the project's threads with their messages and runs, in one short
   * transaction (at most `limit` threads, 1..1000, examined or deleted): call again with
   * `nextCursor` until it is null; the project then holds no thread that existed at the first step.
   */
  deleteProjectThreads(project: string, query: ProjectWalk): Promise<ProjectThreadsDeleted>;
  /**
   * Retention (run/retention.ts), one step of a walk over the project's threads in id order:
   * examines at most `limit` (1..1000) threads after the cursor and answers the ids of those last
   * updated (a message appended, or created) before `before`. `nextCursor` is null at the end.
   */
  listRetainedThreads(project: string, before: number, walk: ProjectWalk): Promise<RetainedThreads>;
  /**
   * Deletes these threads (at most 1000) with their messages and runs in one short transaction,
   * each only if it is still last updated before `before` and has no `queued` or `running` run.
   */
  deleteRetainedThreads(ids: readonly string[], before: number): Promise<RetentionDeleted>;
  /**
   * Deletes up to `limit` (1..1000) of the project's stateless runs that finished before `before`
   * (never a `queued` or `running` one) in one short transaction; answers how many.
   */
  deleteRetainedRuns(project: string, before: number, limit: number): Promise<number>;
  close(): Promise<void>;
}

/** Options of {@link RunStore.interruptUnfinished}. */
export interface InterruptOptions {
  /** Only the runs this node created or last committed. @default every node's */
  readonly node?: string | undefined;
  /** Runs left as they are: a dead node's background runs, which another node resumes. @default none */
  readonly except?: readonly string[] | undefined;
}

/** A step of a walk over one project's threads (RunStore.countProjectThreads, deleteProjectThreads). */
export interface ProjectWalk {
  /** 1..1000. */
  readonly limit: number;
  /** The previous step's `nextCursor`; absent on the first step. */
  readonly cursor?: string | undefined;
}

/** What one step of {@link RunStore.deleteProjectThreads} deleted, and where the next step goes on. */
export interface ProjectThreadsDeleted {
  readonly threads: number;
  readonly messages: number;
  /** Runs that were still on the deleted threads. */
  readonly runs: number;
  readonly nextCursor: string | null;
}

/** One step of {@link RunStore.listRetainedThreads}. */
export interface RetainedThreads {
  /** Threads last updated before the cutoff, among those examined. */
  readonly ids: string[];
  readonly nextCursor: string | null;
}

/** What {@link RunStore.deleteRetainedThreads} deleted. */
export interface RetentionDeleted {
  readonly threads: number;
  /** Messages of the deleted threads. */
  readonly messages: number;
  /** Runs of the deleted threads. */
  readonly runs: number;
}
