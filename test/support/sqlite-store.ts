/**
 * Helpers of the SQLite store tests: a store on a fresh temporary file, a file's schema version,
 * rolling a file back to what an older agentpool wrote, and a writer process killed mid-write.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A store opened on a new file in a temporary directory, and the cleanup that closes and removes it. */
export async function storeOnTempFile<S extends { close(): Promise<void> }>(
  open: (path: string) => S,
): Promise<{ store: S; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-store-'));
  const store = open(join(dir, 'agentpool.db'));
  return {
    store,
    async cleanup() {
      try {
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** `PRAGMA user_version` of a database file, read without changing it. */
export function userVersion(path: string): unknown {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true });
  } finally {
    db.close();
  }
}

/**
 * What undoes each migration, by the version it moved to: rolling back to version v runs the
 * entries above v, newest first. A new migration adds its undo here.
 */
const UNDO: Readonly<Record<number, string>> = {
  2: 'DROP TABLE runs; DROP TABLE messages; DROP TABLE threads;',
  3: 'DROP TABLE api_keys; DROP TABLE projects;',
  4: 'DROP INDEX runs_project_created;', // projects.limits went with the projects table
  5: 'ALTER TABLE agents DROP COLUMN rollout;',
  6: 'DROP INDEX runs_thread_created; CREATE INDEX runs_thread_created ON runs (thread_id, created_at, id);',
  7:
    'DROP TABLE agent_tombstones; DROP TABLE agent_revision; DROP INDEX agents_revision; ' +
    'ALTER TABLE agents DROP COLUMN writer; ALTER TABLE agents DROP COLUMN revision;',
  8: 'DROP INDEX threads_project;',
  9: 'ALTER TABLE runs DROP COLUMN node_id; ALTER TABLE threads DROP COLUMN fence;',
  10: `
    CREATE TABLE threads_old (
      id TEXT PRIMARY KEY NOT NULL, project TEXT NOT NULL, metadata TEXT NOT NULL, ttl_seconds REAL,
      expires_at INTEGER, message_count INTEGER NOT NULL, created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, fence INTEGER NOT NULL DEFAULT 0);
    INSERT INTO threads_old SELECT id, project, metadata, ttl_seconds, expires_at, message_count,
      created_at, updated_at, fence FROM threads;
    DROP TABLE threads;
    ALTER TABLE threads_old RENAME TO threads;
    CREATE INDEX threads_expires_at ON threads (expires_at, id) WHERE expires_at IS NOT NULL;
    CREATE INDEX threads_project ON threads (project, id);`,
  11: 'DROP TABLE agent_usage;', // its indexes go with it
  12: 'DROP TABLE working_sets;',
  13: 'DROP TABLE mcp_servers;',
  14: 'DROP TABLE flag_history; DROP TABLE flags;',
};

/** Rolls a closed database file back to schema version `version`, as an older agentpool left it. */
export function rollBackSchema(path: string, version: number): void {
  const db = new Database(path);
  try {
    db.pragma('foreign_keys = OFF'); // an undo that rebuilds a table must not cascade
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v > version; v--) {
      const undo = UNDO[v];
      if (undo === undefined) throw new Error(`no undo for schema version ${v}`);
      db.exec(undo);
    }
    db.pragma(`user_version = ${version}`);
  } finally {
    db.close();
  }
}

/**
 * Runs test/store/fixtures/sqlite-writer.ts on `path` (with `args`) until `enough(commits,
 * checkpoints)` holds, then kills it with SIGKILL; returns the ids of the threads it reported
 * committed. Fails if the writer exits by itself or takes longer than 30 s.
 */
export async function killWriter(
  path: string,
  args: readonly string[],
  enough: (commits: number, checkpoints: number) => boolean,
): Promise<string[]> {
  const fixture = new URL('../store/fixtures/sqlite-writer.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [fixture, path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const committed: string[] = [];
  let checkpoints = 0;
  let stderr = '';
  let rest = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'checkpoint') checkpoints++;
      else if (line.startsWith('ok ')) committed.push(line.slice(3));
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const deadline = Date.now() + 30_000;
    while (!enough(committed.length, checkpoints)) {
      if (child.exitCode !== null) throw new Error(`the writer exited (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) throw new Error(`the writer took too long: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  return committed;
}
