/**
 * The SQLite schema of the stores (agents; threads, messages and runs): migrations (append-only,
 * tracked by PRAGMA user_version), opening a file with the right pragmas, row types, and every
 * statement, prepared once. SqliteAgentStore and SqliteRunStore run the same list, so either may
 * open a file first and both can share one file.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AgentPoolError } from '../core/errors.ts';
import type { SqliteLockingMode } from './sqlite-connection.ts';
import type { AgentRow, ApiKeyRow, MessageRow, ProjectRow, RunRow, ThreadRow, VersionRow } from './rows.ts';

/**
 * The schema, one entry per version; entry i moves `user_version` from i to i + 1. Entries are
 * append-only: a released migration is never edited, because files in the field already ran it.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE agents (
    id             TEXT PRIMARY KEY NOT NULL,
    project        TEXT NOT NULL,
    name           TEXT NOT NULL,
    active_version INTEGER NOT NULL,
    latest_version INTEGER NOT NULL,
    spec           TEXT NOT NULL,  -- JSON of the active version, so reads need no join
    tier           TEXT NOT NULL,
    ttl_seconds    REAL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    expires_at     INTEGER,
    UNIQUE (project, name)
  );
  CREATE INDEX agents_tier_id ON agents (tier, id);
  CREATE INDEX agents_expires_at ON agents (expires_at, id) WHERE expires_at IS NOT NULL;
  CREATE TABLE agent_versions (
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, version)
  );
  -- Labels of the active version. project and name are copied here so that a label-filtered page
  -- is a range scan of one index in name order, not a scan of the project's agents.
  CREATE TABLE agent_labels (
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    project  TEXT NOT NULL,
    name     TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (agent_id, key)
  ) WITHOUT ROWID;
  CREATE INDEX agent_labels_filter ON agent_labels (project, key, value, name);
  `,
  `
  CREATE TABLE threads (
    id            TEXT PRIMARY KEY NOT NULL,
    project       TEXT NOT NULL,
    metadata      TEXT NOT NULL,  -- JSON
    ttl_seconds   REAL,
    expires_at    INTEGER,
    message_count INTEGER NOT NULL,  -- the highest seq, so an append needs no max() scan
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE INDEX threads_expires_at ON threads (expires_at, id) WHERE expires_at IS NOT NULL;
  CREATE TABLE messages (
    thread_id  TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,  -- JSON
    run_id     TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE runs (
    id            TEXT PRIMARY KEY NOT NULL,
    project       TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    agent_name    TEXT NOT NULL,
    agent_version INTEGER NOT NULL,
    thread_id     TEXT REFERENCES threads (id) ON DELETE CASCADE,  -- null for a stateless run
    status        TEXT NOT NULL,
    input         TEXT NOT NULL,
    output        TEXT,
    model         TEXT NOT NULL,
    steps         INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost          REAL NOT NULL,
    error         TEXT,  -- JSON
    metadata      TEXT NOT NULL,  -- JSON
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
  );
  -- Serves listRuns (keyset, newest first) and the cascade from threads.
  CREATE INDEX runs_thread_created ON runs (thread_id, created_at, id);
  -- Only in-flight runs, so the start-up sweep reads a handful of rows, not the history.
  CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('queued', 'running');
  `,
  `
  CREATE TABLE projects (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    metadata   TEXT NOT NULL,  -- JSON
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    project      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the key; the key itself is never stored
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
  );
  -- Serves listKeys (keyset, newest first) and the cascade from projects.
  CREATE INDEX api_keys_project_created ON api_keys (project, created_at, id);
  `,
  `
  -- Quotas and budgets of a project (JSON, see governance/limits.ts); '{}' takes the pool's defaults.
  ALTER TABLE projects ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
  -- Serves costSince (a project's spend in a budget window) and per-agent run statistics.
  -- project and created_at never change, so step commits do not touch this index.
  CREATE INDEX runs_project_created ON runs (project, created_at);
  `,
  `
  -- The agent's canary rollout (JSON: candidateVersion, flag, startedAt, flagStartedAt); null when
  -- none. Read with the agent, never filtered on, so it needs no index.
  ALTER TABLE agents ADD COLUMN rollout TEXT;
  `,
  `
  -- Stateless runs (no thread) need no entry in the thread index: partial, it costs them nothing.
  -- "thread_id = ?" implies NOT NULL, so listRuns still uses it.
  DROP INDEX runs_thread_created;
  CREATE INDEX runs_thread_created ON runs (thread_id, created_at, id) WHERE thread_id IS NOT NULL;
  `,
  `
  -- The change feed of definitions, so a process sees what another one (agentpool apply -f, a
  -- second server) wrote to the same file. Every definition write (create, new version, activation,
  -- rollout, delete) takes the next revision from agent_revision in its transaction and stamps the
  -- agent row, or a tombstone for a delete, with it and with its store instance (writer), so a
  -- watcher reads "revision > cursor" as one index range scan, usually empty, and skips its own.
  -- Rows written before this migration keep revision 0 and writer 0: nobody is waiting for them.
  ALTER TABLE agents ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE agents ADD COLUMN writer INTEGER NOT NULL DEFAULT 0;
  -- Partial: agents not written since the upgrade cost nothing (queries repeat "revision > 0").
  CREATE INDEX agents_revision ON agents (revision) WHERE revision > 0;
  -- One row: the latest revision, and the revision up to which deletions were pruned.
  CREATE TABLE agent_revision (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    head           INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL
  );
  INSERT INTO agent_revision (id, head, pruned_through) VALUES (1, 0, 0);
  -- Deleted agents, kept for a bounded number of revisions (the store's changeHistory).
  CREATE TABLE agent_tombstones (
    revision INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    project  TEXT NOT NULL,
    name     TEXT NOT NULL,
    writer   INTEGER NOT NULL
  );
  `,
  `
  -- A project's threads, for deleting a project: each step of the walk is an index range scan
  -- over that project's threads alone, not over every tenant's. Thread ids grow with time, so a
  -- new thread's entry lands on the index's last page of its project.
  CREATE INDEX threads_project ON threads (project, id);
  `,
  `
  -- Fencing (RunStore, "Fencing"): the newest thread-lease token that wrote to the thread. A write
  -- carrying an older token is refused in the transaction that would have written it.
  ALTER TABLE threads ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
  -- The node that created or last committed the run (null on a single node), so a cluster ends
  -- only a dead node's runs. Read through runs_unfinished: only in-flight runs are examined.
  ALTER TABLE runs ADD COLUMN node_id TEXT;
  `,
  `
  -- Threads keyed by their id alone (WITHOUT ROWID): a new thread writes one B-tree page fewer
  -- (no separate index on id) and a write to a thread (seqs, fence) descends one B-tree, not two.
  -- The table is rebuilt, the way SQLite's ALTER TABLE documentation prescribes: openDatabase runs
  -- migrations with foreign keys off, so dropping the old table cascades to no message or run,
  -- and the references of messages and runs name the new table once it is renamed. Every id is
  -- copied, so no reference can break.
  CREATE TABLE threads_new (
    id            TEXT PRIMARY KEY NOT NULL,
    project       TEXT NOT NULL,
    metadata      TEXT NOT NULL,  -- JSON
    ttl_seconds   REAL,
    expires_at    INTEGER,
    message_count INTEGER NOT NULL,  -- the highest seq, so an append needs no max() scan
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    fence         INTEGER NOT NULL DEFAULT 0  -- see the migration that added it
  ) WITHOUT ROWID;
  INSERT INTO threads_new (id, project, metadata, ttl_seconds, expires_at, message_count, created_at, updated_at, fence)
    SELECT id, project, metadata, ttl_seconds, expires_at, message_count, created_at, updated_at, fence FROM threads;
  DROP TABLE threads;
  ALTER TABLE threads_new RENAME TO threads;
  CREATE INDEX threads_expires_at ON threads (expires_at, id) WHERE expires_at IS NOT NULL;
  CREATE INDEX threads_project ON threads (project, id);
  `,
  `
  -- Agents' persisted usage (docs/operations.md, "Usage and preloading"): added up in coalesced
  -- writes (registry/usage.ts), never on the run path; a row per agent once used, gone with it.
  -- Apart from agents so that a definition write never touches these indexes, nor they it.
  CREATE TABLE agent_usage (
    agent_id         TEXT PRIMARY KEY NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    project          TEXT NOT NULL,
    uses             INTEGER NOT NULL,
    successes        INTEGER NOT NULL,
    failures         INTEGER NOT NULL,
    latency_ms_total REAL NOT NULL,
    latency_count    INTEGER NOT NULL,
    cost_usd         REAL NOT NULL,
    last_used_at     INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- One per listing order of a project's activity report, and the preloader's candidates (uses,
  -- every project).
  CREATE INDEX agent_usage_project_uses ON agent_usage (project, uses DESC, agent_id);
  CREATE INDEX agent_usage_project_recent ON agent_usage (project, last_used_at DESC, agent_id);
  CREATE INDEX agent_usage_project_failures ON agent_usage (project, failures DESC, agent_id);
  CREATE INDEX agent_usage_project_cost ON agent_usage (project, cost_usd DESC, agent_id);
  CREATE INDEX agent_usage_uses ON agent_usage (uses DESC, agent_id);
  `,
  `
  -- Each node's working-set checkpoint (WorkingSetStore): one row per node id, replaced whole by
  -- each save; data is the JSON of its resident agents and the eviction policy's frequency sketch.
  CREATE TABLE working_sets (
    node     TEXT PRIMARY KEY NOT NULL,
    saved_at INTEGER NOT NULL,
    data     TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- The MCP servers each project declared (McpServerStore): declaration is the JSON of the
  -- declaration as validated, with environment references, never resolved secrets.
  CREATE TABLE mcp_servers (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    declaration TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
  ) WITHOUT ROWID;
  `,
  `
  -- Feature flags set at runtime (FlagStore): data is the JSON of the strategy and its startedAt;
  -- revision is the id of the flag_history row that set it.
  CREATE TABLE flags (
    name       TEXT PRIMARY KEY NOT NULL,
    data       TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
  ) WITHOUT ROWID;
  -- Their audit trail: one row per put or delete, never rewritten; it outlives the flag.
  CREATE TABLE flag_history (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name   TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after  TEXT,
    actor  TEXT NOT NULL,
    at     INTEGER NOT NULL
  );
  CREATE INDEX flag_history_name ON flag_history (name, id);
  `,
];

/** The schema version this code writes; a file's `user_version` after opening. */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS.length;

/** A row of the change feed: an agent row's identity and state, or a tombstone (`deleted` 1). */
export interface ChangeRow {
  revision: number;
  id: string;
  project: string;
  name: string;
  active_version: number | null;
  latest_version: number | null;
  rollout: string | null;
  deleted: 0 | 1;
}

/** What `versionStats` reads of a run. */
export interface OutcomeRow {
  agent_version: number;
  status: string;
  started_at: number | null;
  finished_at: number | null;
}

/**
 * Opens a store's database like {@link openDatabase}; any failure that is not already coded
 * becomes `STORE_FAILED` naming the store and the path.
 */
export function openStoreDatabase(
  path: string,
  busyTimeoutMs: number,
  store: string,
  lockingMode: SqliteLockingMode = 'normal',
): Database.Database {
  try {
    return openDatabase(path, busyTimeoutMs, lockingMode);
  } catch (err) {
    if (err instanceof AgentPoolError) throw err;
    throw new AgentPoolError(
      'STORE_FAILED',
      `cannot open ${store} "${path}": ${String(err)}`,
      { path },
      { cause: err },
    );
  }
}

/** Opens (creating if needed) and migrates a store file. */
export function openDatabase(
  path: string,
  busyTimeoutMs: number,
  lockingMode: SqliteLockingMode = 'normal',
): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    // Before the first access, so that the WAL index lives in this connection's memory, not in
    // a -shm file: no other connection can open the file until this one closes.
    if (lockingMode === 'exclusive') db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    // NORMAL under WAL never corrupts; a power loss may only drop the last commits.
    db.pragma('synchronous = NORMAL');
    // Under WAL + NORMAL the fsyncs happen at checkpoints. SQLite checkpoints inside the COMMIT
    // that makes the WAL reach this many pages: every ~40 MB instead of every ~4 MB cut the cost
    // of a small commit from ~55 to ~34 µs here. A run store's checkpointer thread (see
    // sqlite-checkpointer.ts) normally copies the WAL long before; this bounds it when it cannot.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // Off while migrating: a migration that rebuilds a table drops the old one, which must not
    // cascade to the rows that reference it. (A pragma, so outside the migration's transaction.)
    db.pragma('foreign_keys = OFF');
    migrate(db, path);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database.Database, path: string): void {
  const run = db.transaction(() => {
    // Read inside the write lock: another process may have migrated while this one waited.
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new AgentPoolError(
        'STORE_FAILED',
        `agent store "${path}" has schema version ${current}, newer than this agentpool supports ` +
          `(${MIGRATIONS.length}); upgrade agentpool to open it`,
        { path, schemaVersion: current, supportedVersion: MIGRATIONS.length },
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v] as string);
    if (current !== MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  run.immediate();
}

/** A definition write's change-feed stamp: its revision and its writer. */
type Stamp = [revision: number, writer: number];

/** Every statement of the store, prepared once per connection. @internal */
export function prepareStatements(db: Database.Database) {
  const agent = <A extends unknown[] | object>(sql: string) => db.prepare<A, AgentRow>(sql);
  const labelled = (after: boolean) => `
    SELECT a.* FROM agent_labels l JOIN agents a ON a.id = l.agent_id
    WHERE l.project = @project AND l.key = @key AND l.value = @value ${after ? 'AND l.name > @after' : ''}
      AND (@q IS NULL OR instr(l.name, @q) > 0)
      AND NOT EXISTS (
        SELECT 1 FROM json_each(@rest) j WHERE NOT EXISTS (
          SELECT 1 FROM agent_labels x WHERE x.agent_id = l.agent_id AND x.key = j.key AND x.value = j.value))
    ORDER BY l.name LIMIT @limit`;
  type LabelArgs = {
    project: string;
    key: string;
    value: string;
    rest: string;
    q: string | null;
    limit: number;
  };
  return {
    insertAgent: db.prepare<[AgentRow]>(`
      INSERT INTO agents (id, project, name, active_version, latest_version, spec, tier, ttl_seconds,
                          created_at, updated_at, last_used_at, expires_at, rollout, revision, writer)
      VALUES (@id, @project, @name, @active_version, @latest_version, @spec, @tier, @ttl_seconds,
              @created_at, @updated_at, @last_used_at, @expires_at, @rollout, @revision, @writer)`),
    insertVersion: db.prepare<[string, number, string, number]>(
      'INSERT INTO agent_versions (agent_id, version, spec, created_at) VALUES (?, ?, ?, ?)',
    ),
    insertLabel: db.prepare<[string, string, string, string, string]>(
      'INSERT INTO agent_labels (agent_id, project, name, key, value) VALUES (?, ?, ?, ?, ?)',
    ),
    deleteLabels: db.prepare<[string]>('DELETE FROM agent_labels WHERE agent_id = ?'),
    getById: agent<[string]>('SELECT * FROM agents WHERE id = ?'),
    getByName: agent<[string, string]>('SELECT * FROM agents WHERE project = ? AND name = ?'),
    listFirst: agent<[string, number]>('SELECT * FROM agents WHERE project = ? ORDER BY name LIMIT ?'),
    listAfter: agent<[string, string, number]>(
      'SELECT * FROM agents WHERE project = ? AND name > ? ORDER BY name LIMIT ?',
    ),
    // A name search walks the (project, name) index in order and tests each name, stopping at a
    // full page: a common text answers at once, a rare one reads the project's names once.
    searchFirst: agent<[string, string, number]>(
      'SELECT * FROM agents WHERE project = ? AND instr(name, ?) > 0 ORDER BY name LIMIT ?',
    ),
    searchAfter: agent<[string, string, string, number]>(
      'SELECT * FROM agents WHERE project = ? AND name > ? AND instr(name, ?) > 0 ORDER BY name LIMIT ?',
    ),
    listLabelsFirst: agent<LabelArgs>(labelled(false)),
    listLabelsAfter: agent<LabelArgs & { after: string }>(labelled(true)),
    // Counts at most 4096 entries (~150 µs): enough to tell a rare label from a common one.
    probeLabel: db
      .prepare<[string, string, string], number>(
        'SELECT count(*) FROM (SELECT 1 FROM agent_labels WHERE project = ? AND key = ? AND value = ? LIMIT 4096)',
      )
      .pluck(),
    tierFirst: agent<[string, number]>('SELECT * FROM agents WHERE tier = ? ORDER BY id LIMIT ?'),
    tierAfter: agent<[string, string, number]>(
      'SELECT * FROM agents WHERE tier = ? AND id > ? ORDER BY id LIMIT ?',
    ),
    count: db.prepare<[string], number>('SELECT count(*) FROM agents WHERE project = ?').pluck(),
    // The WHERE clauses are the optimistic checks: no row back means absent, stale, or rolling out.
    // Every definition write stamps the row with its revision and writer (`Stamp`, the last two
    // parameters before the WHERE's), for the change feed.
    bumpVersion: agent<[string, string, number | null, number, number | null, ...Stamp, string, number]>(`
      UPDATE agents SET active_version = latest_version + 1, latest_version = latest_version + 1,
        spec = ?, tier = ?, ttl_seconds = ?, updated_at = ?, expires_at = ?, revision = ?, writer = ?
      WHERE id = ? AND latest_version = ? AND rollout IS NULL RETURNING *`),
    addCandidate: agent<[string, number, ...Stamp, string, number]>(`
      UPDATE agents SET latest_version = latest_version + 1, rollout = ?, updated_at = ?, revision = ?, writer = ?
      WHERE id = ? AND latest_version = ? AND rollout IS NULL RETURNING *`),
    setActive: agent<
      [number, string, string, number | null, number, number | null, string | null, ...Stamp, string]
    >(`
      UPDATE agents SET active_version = ?, spec = ?, tier = ?, ttl_seconds = ?, updated_at = ?, expires_at = ?,
        rollout = ?, revision = ?, writer = ?
      WHERE id = ? RETURNING *`),
    setRollout: agent<[string | null, number, ...Stamp, string]>(
      'UPDATE agents SET rollout = ?, updated_at = ?, revision = ?, writer = ? WHERE id = ? RETURNING *',
    ),
    // The change feed (see the migration that added it).
    nextRevision: db
      .prepare<[], number>('UPDATE agent_revision SET head = head + 1 WHERE id = 1 RETURNING head')
      .pluck(),
    head: db.prepare<[], number>('SELECT head FROM agent_revision WHERE id = 1').pluck(),
    prunedThrough: db.prepare<[], number>('SELECT pruned_through FROM agent_revision WHERE id = 1').pluck(),
    changesSince: db.prepare<{ after: number; writer: number; limit: number }, ChangeRow>(`
      SELECT revision, id, project, name, active_version, latest_version, rollout, 0 AS deleted
        FROM agents WHERE revision > @after AND revision > 0 AND writer <> @writer
      UNION ALL
      SELECT revision, agent_id, project, name, NULL, NULL, NULL, 1
        FROM agent_tombstones WHERE revision > @after AND writer <> @writer
      ORDER BY revision LIMIT @limit`),
    insertTombstone: db.prepare<[number, string, string, string, number]>(
      'INSERT INTO agent_tombstones (revision, agent_id, project, name, writer) VALUES (?, ?, ?, ?, ?)',
    ),
    pruneTombstones: db.prepare<[number]>('DELETE FROM agent_tombstones WHERE revision <= ?'),
    setPrunedThrough: db.prepare<[number]>(
      'UPDATE agent_revision SET pruned_through = MAX(pruned_through, ?) WHERE id = 1',
    ),
    getVersion: db.prepare<[string, number], VersionRow>(
      'SELECT * FROM agent_versions WHERE agent_id = ? AND version = ?',
    ),
    listVersions: db.prepare<[string, number, number], VersionRow>(
      'SELECT * FROM agent_versions WHERE agent_id = ? AND version < ? ORDER BY version DESC LIMIT ?',
    ),
    deleteAgent: db.prepare<[string], { project: string; name: string }>(
      'DELETE FROM agents WHERE id = ? RETURNING project, name',
    ),
    touch: db.prepare<{ at: number; id: string }>(`
      UPDATE agents SET last_used_at = @at,
        expires_at = CASE WHEN ttl_seconds IS NULL THEN NULL ELSE @at + ttl_seconds * 1000 END
      WHERE id = @id`),
    // Only a later use moves it: uses are recorded late and out of order (coalesced per interval).
    recordUse: db.prepare<{ at: number; id: string }>(`
      UPDATE agents SET last_used_at = @at,
        expires_at = CASE WHEN ttl_seconds IS NULL THEN NULL ELSE @at + ttl_seconds * 1000 END
      WHERE id = @id AND last_used_at < @at`),
    listExpired: agent<[number, number]>(
      'SELECT * FROM agents WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?',
    ),
  };
}

/** Every statement of the run store (threads, messages, runs), prepared once per connection. @internal */
export function prepareRunStatements(db: Database.Database) {
  const run = <A extends unknown[] | object>(sql: string) => db.prepare<A, RunRow>(sql);
  const runColumns = `project = @project, agent_id = @agent_id, agent_name = @agent_name,
    agent_version = @agent_version, status = @status, input = @input, output = @output, model = @model,
    steps = @steps, input_tokens = @input_tokens, output_tokens = @output_tokens, cost = @cost,
    error = @error, metadata = @metadata, created_at = @created_at, started_at = @started_at,
    finished_at = @finished_at`;
  // SET reads the old row, so both MAX() see the previous updated_at; MAX keeps it monotonic when
  // a caller's clock steps back. With a fence (else null) the write also checks and raises the
  // thread's fence. No row back means the thread is gone or the fence is stale.
  const reserveSeqs = `
    UPDATE threads SET message_count = message_count + @n, updated_at = MAX(updated_at, @at),
      expires_at = CASE WHEN ttl_seconds IS NULL THEN NULL ELSE MAX(updated_at, @at) + ttl_seconds * 1000 END,
      fence = COALESCE(@fence, fence)
    WHERE id = @id AND (@fence IS NULL OR fence <= @fence) RETURNING message_count`;
  return {
    insertThread: db.prepare<[ThreadRow]>(`
      INSERT INTO threads (id, project, metadata, ttl_seconds, expires_at, message_count, created_at, updated_at)
      VALUES (@id, @project, @metadata, @ttl_seconds, @expires_at, @message_count, @created_at, @updated_at)`),
    getThread: db.prepare<[string], ThreadRow>('SELECT * FROM threads WHERE id = ?'),
    threadExists: db.prepare<[string], number>('SELECT 1 FROM threads WHERE id = ?').pluck(),
    // Messages and runs go with the thread through ON DELETE CASCADE.
    deleteThread: db.prepare<[string]>('DELETE FROM threads WHERE id = ?'),
    // Reserves seqs (count - n + 1 .. count) and moves the expiry in one statement.
    reserveSeqs: db
      .prepare<{ id: string; n: number; at: number; fence: number | null }, number>(reserveSeqs)
      .pluck(),
    // A fenced write without messages: checks and raises the fence alone.
    fenceThread: db.prepare<{ id: string; fence: number }>(
      'UPDATE threads SET fence = @fence WHERE id = @id AND fence <= @fence',
    ),
    threadFence: db.prepare<[string], number>('SELECT fence FROM threads WHERE id = ?').pluck(),
    insertMessage: db.prepare<[MessageRow]>(`
      INSERT INTO messages (thread_id, seq, id, role, content, run_id, created_at)
      VALUES (@thread_id, @seq, @id, @role, @content, @run_id, @created_at)`),
    listMessages: db.prepare<[string, number, number], MessageRow>(
      'SELECT * FROM messages WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    recentMessages: db.prepare<[string, number], MessageRow>(
      'SELECT * FROM messages WHERE thread_id = ? ORDER BY seq DESC LIMIT ?',
    ),
    listExpiredThreads: db.prepare<[number, number], ThreadRow>(
      'SELECT * FROM threads WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?',
    ),
    insertRun: db.prepare<[RunRow]>(`
      INSERT INTO runs (id, project, agent_id, agent_name, agent_version, thread_id, status, input, output,
                        model, steps, input_tokens, output_tokens, cost, error, metadata, created_at,
                        started_at, finished_at, node_id)
      VALUES (@id, @project, @agent_id, @agent_name, @agent_version, @thread_id, @status, @input, @output,
              @model, @steps, @input_tokens, @output_tokens, @cost, @error, @metadata, @created_at,
              @started_at, @finished_at, @node_id)`),
    // A run never changes thread: the WHERE makes a record naming another thread match nothing.
    // A store without a node id leaves the run's node as it was.
    updateRun: db.prepare<[RunRow]>(
      `UPDATE runs SET ${runColumns}, node_id = COALESCE(@node_id, node_id)
       WHERE id = @id AND thread_id IS @thread_id`,
    ),
    runExists: db.prepare<[string], number>('SELECT 1 FROM runs WHERE id = ?').pluck(),
    getRun: run<[string]>('SELECT * FROM runs WHERE id = ?'),
    costSince: db
      .prepare<[string, number], number>(
        'SELECT COALESCE(SUM(cost), 0) FROM runs WHERE project = ? AND created_at >= ?',
      )
      .pluck(),
    // Walks runs_project_created backwards from now to `since`, keeping the agent's terminal runs.
    versionOutcomes: db.prepare<[string, number, string, number], OutcomeRow>(`
      SELECT agent_version, status, started_at, finished_at FROM runs
      WHERE project = ? AND created_at >= ? AND agent_id = ?
        AND status IN ('succeeded', 'failed', 'cancelled', 'interrupted')
      ORDER BY created_at DESC, id DESC LIMIT ?`),
    listRunsFirst: run<[string, number]>(
      'SELECT * FROM runs WHERE thread_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
    ),
    listRunsAfter: run<[string, number, string, number]>(`
      SELECT * FROM runs WHERE thread_id = ? AND (created_at, id) < (?, ?)
      ORDER BY created_at DESC, id DESC LIMIT ?`),
    interruptUnfinished: db.prepare<[number, string]>(`
      UPDATE runs SET status = 'interrupted', finished_at = ?, error = ?
      WHERE status IN ('queued', 'running')`),
    interruptNodeUnfinished: db.prepare<[number, string, string, string]>(`
      UPDATE runs SET status = 'interrupted', finished_at = ?, error = ?
      WHERE status IN ('queued', 'running') AND node_id = ?
        AND id NOT IN (SELECT value FROM json_each(?))`),
  };
}

/** Every statement of the project store (projects, API keys), prepared once per connection. @internal */
export function prepareProjectStatements(db: Database.Database) {
  const key = <A extends unknown[] | object>(sql: string) => db.prepare<A, ApiKeyRow>(sql);
  return {
    insertProject: db.prepare<[ProjectRow]>(
      `INSERT INTO projects (id, name, metadata, limits, created_at)
       VALUES (@id, @name, @metadata, @limits, @created_at)`,
    ),
    setLimits: db.prepare<[string, string], ProjectRow>(
      'UPDATE projects SET limits = ? WHERE id = ? RETURNING *',
    ),
    getProject: db.prepare<[string], ProjectRow>('SELECT * FROM projects WHERE id = ?'),
    listProjectsFirst: db.prepare<[number], ProjectRow>('SELECT * FROM projects ORDER BY id LIMIT ?'),
    listProjectsAfter: db.prepare<[string, number], ProjectRow>(
      'SELECT * FROM projects WHERE id > ? ORDER BY id LIMIT ?',
    ),
    // Keys go with the project through ON DELETE CASCADE.
    deleteProject: db.prepare<[string]>('DELETE FROM projects WHERE id = ?'),
    insertKey: db.prepare<[ApiKeyRow]>(`
      INSERT INTO api_keys (id, project, prefix, key_hash, name, created_at, last_used_at, revoked_at)
      VALUES (@id, @project, @prefix, @key_hash, @name, @created_at, @last_used_at, @revoked_at)`),
    findKeyByHash: key<[string]>('SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL'),
    listKeysFirst: key<[string, number]>(
      'SELECT * FROM api_keys WHERE project = ? ORDER BY created_at DESC, id DESC LIMIT ?',
    ),
    listKeysAfter: key<[string, number, string, number]>(`
      SELECT * FROM api_keys WHERE project = ? AND (created_at, id) < (?, ?)
      ORDER BY created_at DESC, id DESC LIMIT ?`),
    // COALESCE keeps the first revocation time when a key is revoked twice.
    revokeKey: db.prepare<[number, string, string]>(
      'UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND project = ?',
    ),
    // MAX keeps lastUsedAt monotonic when concurrent requests record use out of order.
    touchKey: db.prepare<{ id: string; at: number }>(
      'UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, @at), @at) WHERE id = @id',
    ),
    countKeys: db.prepare<[], number>('SELECT count(*) FROM api_keys WHERE revoked_at IS NULL').pluck(),
  };
}
