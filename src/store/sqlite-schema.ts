/**
 * The SQLite schema of the agent store: migrations (append-only, tracked by PRAGMA user_version),
 * opening a file with the right pragmas, row types, and every statement, prepared once.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AgentPoolError } from '../core/errors.ts';

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
];

/** The schema version this code writes; a file's `user_version` after opening. */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS.length;

/** A row of `agents`. */
export interface AgentRow {
  id: string;
  project: string;
  name: string;
  active_version: number;
  latest_version: number;
  spec: string;
  tier: string;
  ttl_seconds: number | null;
  created_at: number;
  updated_at: number;
  last_used_at: number;
  expires_at: number | null;
}

/** A row of `agent_versions`. */
export interface VersionRow {
  agent_id: string;
  version: number;
  spec: string;
  created_at: number;
}

/** Opens (creating if needed) and migrates a store file. */
export function openDatabase(path: string, busyTimeoutMs: number): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL under WAL never corrupts; a power loss may only drop the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    migrate(db, path);
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

/** Every statement of the store, prepared once per connection. */
export function prepareStatements(db: Database.Database) {
  const agent = <A extends unknown[] | object>(sql: string) => db.prepare<A, AgentRow>(sql);
  const labelled = (after: boolean) => `
    SELECT a.* FROM agent_labels l JOIN agents a ON a.id = l.agent_id
    WHERE l.project = @project AND l.key = @key AND l.value = @value ${after ? 'AND l.name > @after' : ''}
      AND NOT EXISTS (
        SELECT 1 FROM json_each(@rest) j WHERE NOT EXISTS (
          SELECT 1 FROM agent_labels x WHERE x.agent_id = l.agent_id AND x.key = j.key AND x.value = j.value))
    ORDER BY l.name LIMIT @limit`;
  type LabelArgs = { project: string; key: string; value: string; rest: string; limit: number };
  return {
    insertAgent: db.prepare<[AgentRow]>(`
      INSERT INTO agents (id, project, name, active_version, latest_version, spec, tier, ttl_seconds,
                          created_at, updated_at, last_used_at, expires_at)
      VALUES (@id, @project, @name, @active_version, @latest_version, @spec, @tier, @ttl_seconds,
              @created_at, @updated_at, @last_used_at, @expires_at)`),
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
    latestVersion: db.prepare<[string], number>('SELECT latest_version FROM agents WHERE id = ?').pluck(),
    bumpVersion: agent<[string, string, number | null, number, number | null, string, number]>(`
      UPDATE agents SET active_version = latest_version + 1, latest_version = latest_version + 1,
        spec = ?, tier = ?, ttl_seconds = ?, updated_at = ?, expires_at = ?
      WHERE id = ? AND latest_version = ? RETURNING *`),
    setActive: agent<[number, string, string, number | null, number, number | null, string]>(`
      UPDATE agents SET active_version = ?, spec = ?, tier = ?, ttl_seconds = ?, updated_at = ?, expires_at = ?
      WHERE id = ? RETURNING *`),
    getVersion: db.prepare<[string, number], VersionRow>(
      'SELECT * FROM agent_versions WHERE agent_id = ? AND version = ?',
    ),
    listVersions: db.prepare<[string, number, number], VersionRow>(
      'SELECT * FROM agent_versions WHERE agent_id = ? AND version < ? ORDER BY version DESC LIMIT ?',
    ),
    deleteAgent: db.prepare<[string]>('DELETE FROM agents WHERE id = ?'),
    touch: db.prepare<{ at: number; id: string }>(`
      UPDATE agents SET last_used_at = @at,
        expires_at = CASE WHEN ttl_seconds IS NULL THEN NULL ELSE @at + ttl_seconds * 1000 END
      WHERE id = @id`),
    listExpired: agent<[number, number]>(
      'SELECT * FROM agents WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?',
    ),
  };
}
