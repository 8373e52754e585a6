/** Helpers of the SQLite store tests: a store on a fresh temporary file, and a file's schema version. */
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
