/**
 * The PostgreSQL schema, versioned in code: an append-only list of migrations, applied in one
 * transaction under an advisory lock, so nodes starting together migrate once (the others wait for
 * the lock, then find the schema current), and recorded in `agentpool_schema_migrations`. A schema
 * written by a newer agentpool is refused, as SQLite's `user_version` is.
 *
 * The tables follow the SQLite ones (sqlite-schema.ts): JSON as text (never jsonb, which reorders
 * keys and cannot hold U+0000), epoch-ms times as bigint, text keys in "C" collation so keyset
 * pages order by code point as the other adapters do. Unlike SQLite, run inputs and outputs are
 * stored JSON-encoded too: a PostgreSQL text cannot hold U+0000, which a model or a user may send.
 * The run path's writes are SQL functions, one statement (one round trip) per createRun and
 * commitStep, with their checks (thread present, fence, run present) made inside it.
 */
import { AgentPoolError } from '../../core/errors.ts';
import type { PostgresDatabase } from './database.ts';

/**
 * The schema, one entry per version; entry i moves the schema from version i to i + 1. Entries
 * are append-only: a released migration is never edited, because databases in the field ran it.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE agents (
    id             text COLLATE "C" PRIMARY KEY,
    project        text COLLATE "C" NOT NULL,
    name           text COLLATE "C" NOT NULL,
    active_version integer NOT NULL,
    latest_version integer NOT NULL,
    spec           text NOT NULL,  -- JSON of the active version, so reads need no join
    tier           text COLLATE "C" NOT NULL,
    ttl_seconds    double precision,
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    last_used_at   bigint NOT NULL,
    expires_at     double precision,
    rollout        text,  -- JSON of the canary rollout, or null
    -- The change feed: the revision of the last definition write and the store instance that made it.
    revision       bigint NOT NULL,
    writer         bigint NOT NULL,
    CONSTRAINT agents_project_name UNIQUE (project, name)
  );
  CREATE INDEX agents_tier_id ON agents (tier, id);
  CREATE INDEX agents_expires_at ON agents (expires_at, id) WHERE expires_at IS NOT NULL;
  CREATE INDEX agents_revision ON agents (revision);
  CREATE TABLE agent_versions (
    agent_id   text COLLATE "C" NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version    integer NOT NULL,
    spec       text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (agent_id, version)
  );
  -- Labels of the active version, with project and name copied so that a label-filtered page is
  -- a range scan of one index in name order.
  CREATE TABLE agent_labels (
    agent_id text COLLATE "C" NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    project  text COLLATE "C" NOT NULL,
    name     text COLLATE "C" NOT NULL,
    key      text COLLATE "C" NOT NULL,
    value    text COLLATE "C" NOT NULL,
    PRIMARY KEY (agent_id, key)
  );
  CREATE INDEX agent_labels_filter ON agent_labels (project, key, value, name);
  -- One row: the latest revision, and the revision up to which deletions were pruned. Every
  -- definition write takes the next revision by updating it first, so definition writes are
  -- serialised on this row and revisions commit in order: a watcher reading "revision > cursor"
  -- never skips a write that commits later with a smaller revision.
  CREATE TABLE agent_revision (
    id             integer PRIMARY KEY CHECK (id = 1),
    head           bigint NOT NULL,
    pruned_through bigint NOT NULL
  );
  INSERT INTO agent_revision (id, head, pruned_through) VALUES (1, 0, 0);
  CREATE TABLE agent_tombstones (
    revision bigint PRIMARY KEY,
    agent_id text COLLATE "C" NOT NULL,
    project  text COLLATE "C" NOT NULL,
    name     text COLLATE "C" NOT NULL,
    writer   bigint NOT NULL
  );
  -- Each new revision is announced at commit on a channel of this schema, so a node's change feed
  -- learns of other writers without a query per run (LISTEN in change-feed.ts).
  CREATE FUNCTION agentpool_announce_revision() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('agentpool_changes:' || TG_TABLE_SCHEMA, NEW.head::text);
    RETURN NULL;
  END $$;
  CREATE TRIGGER agent_revision_announce AFTER UPDATE OF head ON agent_revision
    FOR EACH ROW EXECUTE FUNCTION agentpool_announce_revision();

  CREATE TABLE threads (
    id            text COLLATE "C" PRIMARY KEY,
    project       text COLLATE "C" NOT NULL,
    metadata      text NOT NULL,  -- JSON
    ttl_seconds   double precision,
    expires_at    double precision,
    message_count bigint NOT NULL,  -- the highest seq, so an append needs no max() scan
    fence         bigint NOT NULL DEFAULT 0,  -- the newest lease token that wrote (RunStore, "Fencing")
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
  );
  CREATE INDEX threads_expires_at ON threads (expires_at, id) WHERE expires_at IS NOT NULL;
  CREATE INDEX threads_project ON threads (project, id);
  CREATE TABLE messages (
    thread_id  text COLLATE "C" NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    id         text NOT NULL,
    role       text NOT NULL,
    content    text NOT NULL,  -- JSON
    run_id     text,
    created_at bigint NOT NULL,
    PRIMARY KEY (thread_id, seq)
  );
  CREATE TABLE runs (
    id            text COLLATE "C" PRIMARY KEY,
    project       text COLLATE "C" NOT NULL,
    agent_id      text COLLATE "C" NOT NULL,
    agent_name    text NOT NULL,
    agent_version integer NOT NULL,
    thread_id     text COLLATE "C" REFERENCES threads (id) ON DELETE CASCADE,  -- null: stateless
    status        text NOT NULL,
    input         text NOT NULL,  -- JSON string
    output        text,  -- JSON string
    model         text NOT NULL,
    steps         integer NOT NULL,
    input_tokens  bigint NOT NULL,
    output_tokens bigint NOT NULL,
    cost          double precision NOT NULL,
    error         text,  -- JSON
    metadata      text NOT NULL,  -- JSON
    created_at    bigint NOT NULL,
    started_at    bigint,
    finished_at   bigint,
    node_id       text  -- the node that created or last committed it; null on a single node
  );
  -- listRuns (keyset, newest first) and the cascade from threads; stateless runs stay out of it.
  CREATE INDEX runs_thread_created ON runs (thread_id, created_at, id) WHERE thread_id IS NOT NULL;
  -- costSince, versionStats and deleting a project's runs.
  CREATE INDEX runs_project_created ON runs (project, created_at);
  -- Only in-flight runs, by node, so a recovery sweep reads a handful of rows, not the history.
  CREATE INDEX runs_unfinished ON runs (node_id) WHERE status IN ('queued', 'running');

  CREATE TABLE projects (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    metadata   text NOT NULL,  -- JSON
    limits     text NOT NULL DEFAULT '{}',  -- JSON (governance/limits.ts)
    created_at bigint NOT NULL
  );
  CREATE TABLE api_keys (
    id           text COLLATE "C" PRIMARY KEY,
    project      text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,  -- hex SHA-256 of the key; the key itself is never stored
    name         text NOT NULL,
    created_at   bigint NOT NULL,
    last_used_at bigint,
    revoked_at   bigint
  );
  CREATE INDEX api_keys_project_created ON api_keys (project, created_at, id);

  -- Appends messages to a thread with the next seqs and, with a fence, checks and raises the
  -- thread's fence, all under the thread's row lock; returns the seq before the first message.
  -- Raises agentpool:THREAD_NOT_FOUND, or agentpool:LEASE_LOST with the thread's fence as detail.
  CREATE FUNCTION agentpool_append(
    p_thread text, p_fence bigint,
    p_ids text[], p_roles text[], p_contents text[], p_run_ids text[], p_created bigint[]
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    n integer := coalesce(cardinality(p_ids), 0);
    base bigint;
    current_fence bigint;
  BEGIN
    IF n = 0 AND p_fence IS NULL THEN
      -- Nothing to write to the thread: only make sure it stays while the run is written.
      SELECT message_count INTO base FROM threads WHERE id = p_thread FOR KEY SHARE;
      IF NOT FOUND THEN RAISE EXCEPTION 'agentpool:THREAD_NOT_FOUND'; END IF;
      RETURN base;
    END IF;
    -- SET reads the old row, so both greatest() see the previous updated_at: it never moves back.
    UPDATE threads SET
      message_count = message_count + n,
      updated_at = CASE WHEN n = 0 THEN updated_at ELSE greatest(updated_at, p_created[n]) END,
      expires_at = CASE
        WHEN n = 0 THEN expires_at
        WHEN ttl_seconds IS NULL THEN NULL
        ELSE greatest(updated_at, p_created[n]) + ttl_seconds * 1000 END,
      fence = coalesce(p_fence, fence)
    WHERE id = p_thread AND (p_fence IS NULL OR fence <= p_fence)
    RETURNING message_count - n INTO base;
    IF NOT FOUND THEN
      SELECT fence INTO current_fence FROM threads WHERE id = p_thread;
      IF NOT FOUND THEN RAISE EXCEPTION 'agentpool:THREAD_NOT_FOUND'; END IF;
      RAISE EXCEPTION 'agentpool:LEASE_LOST' USING DETAIL = current_fence::text;
    END IF;
    IF n > 0 THEN
      INSERT INTO messages (thread_id, seq, id, role, content, run_id, created_at)
      SELECT p_thread, base + m.ord, m.id, m.role, m.content, m.run_id, m.created_at
      FROM unnest(p_ids, p_roles, p_contents, p_run_ids, p_created)
        WITH ORDINALITY AS m (id, role, content, run_id, created_at, ord);
    END IF;
    RETURN base;
  END $$;

  -- RunStore.createRun in one statement: the thread's part first (so a missing thread reads
  -- THREAD_NOT_FOUND, not a foreign-key failure), then the run; any failure undoes both.
  CREATE FUNCTION agentpool_create_run(
    p_id text, p_project text, p_agent_id text, p_agent_name text, p_agent_version integer,
    p_thread text, p_status text, p_input text, p_output text, p_model text, p_steps integer,
    p_input_tokens bigint, p_output_tokens bigint, p_cost double precision, p_error text,
    p_metadata text, p_created_at bigint, p_started_at bigint, p_finished_at bigint, p_node text,
    p_fence bigint, p_ids text[], p_roles text[], p_contents text[], p_run_ids text[], p_created bigint[]
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    base bigint;
  BEGIN
    IF p_thread IS NOT NULL THEN
      base := agentpool_append(p_thread, p_fence, p_ids, p_roles, p_contents, p_run_ids, p_created);
    END IF;
    INSERT INTO runs (id, project, agent_id, agent_name, agent_version, thread_id, status, input, output,
                      model, steps, input_tokens, output_tokens, cost, error, metadata, created_at,
                      started_at, finished_at, node_id)
    VALUES (p_id, p_project, p_agent_id, p_agent_name, p_agent_version, p_thread, p_status, p_input,
            p_output, p_model, p_steps, p_input_tokens, p_output_tokens, p_cost, p_error, p_metadata,
            p_created_at, p_started_at, p_finished_at, p_node);
    RETURN base;
  END $$;

  -- RunStore.commitStep in one statement: the thread's part first (deleting a thread deletes its
  -- runs, so a missing thread is the cause to report), then the run record; any failure undoes both.
  -- A store without a node id (p_node null) leaves the run's node as it was.
  CREATE FUNCTION agentpool_commit_step(
    p_id text, p_project text, p_agent_id text, p_agent_name text, p_agent_version integer,
    p_thread text, p_status text, p_input text, p_output text, p_model text, p_steps integer,
    p_input_tokens bigint, p_output_tokens bigint, p_cost double precision, p_error text,
    p_metadata text, p_created_at bigint, p_started_at bigint, p_finished_at bigint, p_node text,
    p_fence bigint, p_ids text[], p_roles text[], p_contents text[], p_run_ids text[], p_created bigint[]
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    base bigint;
  BEGIN
    IF p_thread IS NOT NULL THEN
      base := agentpool_append(p_thread, p_fence, p_ids, p_roles, p_contents, p_run_ids, p_created);
    END IF;
    -- A run never changes thread: a record naming another thread matches nothing.
    UPDATE runs SET project = p_project, agent_id = p_agent_id, agent_name = p_agent_name,
      agent_version = p_agent_version, status = p_status, input = p_input, output = p_output,
      model = p_model, steps = p_steps, input_tokens = p_input_tokens, output_tokens = p_output_tokens,
      cost = p_cost, error = p_error, metadata = p_metadata, created_at = p_created_at,
      started_at = p_started_at, finished_at = p_finished_at, node_id = coalesce(p_node, node_id)
    WHERE id = p_id AND thread_id IS NOT DISTINCT FROM p_thread;
    IF NOT FOUND THEN
      IF EXISTS (SELECT 1 FROM runs WHERE id = p_id) THEN
        RAISE EXCEPTION 'agentpool:THREAD_CHANGED';
      END IF;
      RAISE EXCEPTION 'agentpool:RUN_NOT_FOUND';
    END IF;
    RETURN base;
  END $$;
  `,
  `
  -- RunStore.createRun with a new thread, in one statement: the thread first (a taken id is a
  -- unique violation of threads_pkey), then the run as agentpool_create_run writes it.
  CREATE FUNCTION agentpool_create_thread_run(
    p_id text, p_project text, p_agent_id text, p_agent_name text, p_agent_version integer,
    p_thread text, p_status text, p_input text, p_output text, p_model text, p_steps integer,
    p_input_tokens bigint, p_output_tokens bigint, p_cost double precision, p_error text,
    p_metadata text, p_created_at bigint, p_started_at bigint, p_finished_at bigint, p_node text,
    p_fence bigint, p_ids text[], p_roles text[], p_contents text[], p_run_ids text[], p_created bigint[],
    p_thread_metadata text, p_thread_ttl double precision, p_thread_expires_at double precision,
    p_thread_created_at bigint
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO threads (id, project, metadata, ttl_seconds, expires_at, message_count, created_at, updated_at)
    VALUES (p_thread, p_project, p_thread_metadata, p_thread_ttl, p_thread_expires_at, 0,
            p_thread_created_at, p_thread_created_at);
    RETURN agentpool_create_run(p_id, p_project, p_agent_id, p_agent_name, p_agent_version, p_thread,
      p_status, p_input, p_output, p_model, p_steps, p_input_tokens, p_output_tokens, p_cost, p_error,
      p_metadata, p_created_at, p_started_at, p_finished_at, p_node, p_fence, p_ids, p_roles,
      p_contents, p_run_ids, p_created);
  END $$;
  `,
  `
  -- Agents' persisted usage (docs/operations.md, "Usage and preloading"), as in SQLite: added up in
  -- coalesced writes, a row per agent once used, gone with the agent.
  CREATE TABLE agent_usage (
    agent_id         text COLLATE "C" PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    project          text COLLATE "C" NOT NULL,
    uses             bigint NOT NULL,
    successes        bigint NOT NULL,
    failures         bigint NOT NULL,
    latency_ms_total double precision NOT NULL,
    latency_count    bigint NOT NULL,
    cost_usd         double precision NOT NULL,
    last_used_at     bigint NOT NULL
  );
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
    node     text COLLATE "C" PRIMARY KEY,
    saved_at bigint NOT NULL,
    data     text NOT NULL
  );
  `,
  `
  -- The MCP servers each project declared (McpServerStore): declaration is the JSON of the
  -- declaration as validated, with environment references, never resolved secrets.
  CREATE TABLE mcp_servers (
    project     text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    declaration text NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (project, name)
  );
  `,
  `
  -- Feature flags set at runtime (FlagStore): data is the JSON of the strategy and its startedAt;
  -- revision is the id of the flag_history row that set it.
  CREATE TABLE flags (
    name       text COLLATE "C" PRIMARY KEY,
    data       text NOT NULL,
    revision   bigint NOT NULL,
    updated_at bigint NOT NULL,
    updated_by text NOT NULL
  );
  -- Their audit trail: one row per put or delete, never rewritten; it outlives the flag. Ids are
  -- assigned under a transaction-scoped advisory lock (not a sequence), so they commit in order
  -- and a node that saw id n has seen every change up to n.
  CREATE TABLE flag_history (
    id     bigint PRIMARY KEY,
    name   text COLLATE "C" NOT NULL,
    action text NOT NULL,
    before text,
    after  text,
    actor  text NOT NULL,
    at     bigint NOT NULL
  );
  CREATE INDEX flag_history_name ON flag_history (name, id);
  `,
];

/** The schema version this code writes. */
export const POSTGRES_SCHEMA_VERSION: number = MIGRATIONS.length;

/** What one start's migration found and did. */
export interface MigrationOutcome {
  /** The schema version before. */
  readonly from: number;
  /** The schema version after: {@link POSTGRES_SCHEMA_VERSION}. */
  readonly to: number;
}

/**
 * Brings the database's schema to {@link POSTGRES_SCHEMA_VERSION}: creates the schema if missing
 * and applies the migrations it lacks, all in one transaction holding an advisory lock on the
 * schema's name, so of several nodes starting together one migrates and the others, waiting on
 * the lock, find nothing to do. PostgreSQL's DDL is transactional: a failed migration leaves the
 * schema as it was.
 */
export async function migrate(db: PostgresDatabase): Promise<MigrationOutcome> {
  const schema = db.options.schema;
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`agentpool:migrate:${schema}`]);
    // Created only when missing: CREATE SCHEMA IF NOT EXISTS would still need the right to create
    // schemas, which a role given an existing schema (or public) may not have. The name is checked
    // to be a plain identifier (options.ts): no quoting needed.
    const found = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0) await tx.query(`CREATE SCHEMA ${schema}`);
    await tx.query(`SET LOCAL search_path TO ${schema}`);
    await tx.query(`
      CREATE TABLE IF NOT EXISTS agentpool_schema_migrations (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const applied = await tx.query<{ version: number }>(
      'SELECT coalesce(max(version), 0)::integer AS version FROM agentpool_schema_migrations',
    );
    const current = applied.rows[0]?.version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new AgentPoolError(
        'STORE_FAILED',
        `PostgreSQL schema "${schema}" has schema version ${current}, newer than this agentpool supports ` +
          `(${MIGRATIONS.length}); upgrade agentpool to open it`,
        { schema, schemaVersion: current, supportedVersion: MIGRATIONS.length },
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      await tx.query(MIGRATIONS[v] as string);
      await tx.query('INSERT INTO agentpool_schema_migrations (version) VALUES ($1)', [v + 1]);
    }
    return { from: current, to: MIGRATIONS.length };
  });
}
