/**
 * The PostgreSQL agent store's definition writes that need more than one statement, each one
 * transaction with the same checks and errors as SQLite's (sqlite.ts): the optimistic checks are
 * the UPDATEs' WHEREs, re-read only to tell the caller why nothing matched.
 *
 * Every one first locks the one-row revision counter (`agent_revision`) and stamps what it writes
 * with the next revision: definition writes are serialised on that row, so their revisions commit
 * in order and the change feed never skips one. The counter is always the first lock a definition
 * write takes, before any agent row, so two writers never wait for each other in a cycle.
 */
import {
  agentNotFound,
  candidateIsActive,
  rolloutConflict,
  rolloutInProgress,
  versionConflict,
  versionNotFound,
} from '../agent-store-shared.ts';
import type { AgentRollout, IndexedSpec, StoredFlag } from '../ports.ts';
import type { StoreConnection } from './connection.ts';
import type { Transaction } from './database.ts';
import type { AgentRow, VersionRow } from '../rows.ts';

/** A spec's ttl, or null. */
export function ttlOf(spec: IndexedSpec): number | null {
  return typeof spec.ttlSeconds === 'number' ? spec.ttlSeconds : null;
}

function candidateOf(rollout: string): number {
  return (JSON.parse(rollout) as AgentRollout).candidateVersion;
}

/** Takes `n` revisions (locking the counter until commit); returns the last. */
async function nextRevisions(tx: Transaction, n = 1): Promise<number> {
  const { rows } = await tx.query<{ head: number }>(
    'UPDATE agent_revision SET head = head + $1 WHERE id = 1 RETURNING head',
    [n],
  );
  return (rows[0] as { head: number }).head;
}

/** Locks the counter without taking a revision: for writes that may turn out to change nothing. */
async function lockRevisions(tx: Transaction): Promise<void> {
  await tx.query('SELECT head FROM agent_revision WHERE id = 1 FOR UPDATE');
}

async function getAgent(tx: Transaction, id: string, lock: boolean): Promise<AgentRow | undefined> {
  const { rows } = await tx.query<AgentRow>(
    `SELECT * FROM agents WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0];
}

/** The version's row; VERSION_NOT_FOUND when the agent has no such version. */
async function mustGetVersion(tx: Transaction, id: string, version: number): Promise<VersionRow> {
  const { rows } = await tx.query<VersionRow>(
    'SELECT * FROM agent_versions WHERE agent_id = $1 AND version = $2',
    [id, version],
  );
  const v = rows[0];
  if (v === undefined) throw versionNotFound(id, version);
  return v;
}

async function replaceLabels(tx: Transaction, row: AgentRow, labels: IndexedSpec['labels']): Promise<void> {
  await tx.query('DELETE FROM agent_labels WHERE agent_id = $1', [row.id]);
  const entries = Object.entries(labels);
  if (entries.length === 0) return;
  await tx.query(
    `INSERT INTO agent_labels (agent_id, project, name, key, value)
     SELECT $1, $2, $3, x.key, x.value FROM unnest($4::text[], $5::text[]) AS x (key, value)`,
    [row.id, row.project, row.name, entries.map(([k]) => k), entries.map(([, v]) => v)],
  );
}

/** The multi-statement definition writes of one PostgresAgentStore. */
export class AgentWrites {
  /** This store instance's mark on what it writes (the change feed skips its own). */
  readonly writer: number;
  readonly #conn: StoreConnection;
  readonly #changeHistory: number;

  constructor(conn: StoreConnection, writer: number, changeHistory: number) {
    this.#conn = conn;
    this.writer = writer;
    this.#changeHistory = changeHistory;
  }

  addVersion(
    id: string,
    expectedLatest: number,
    spec: IndexedSpec,
    now: number,
    flag: StoredFlag | undefined,
  ): Promise<AgentRow> {
    const json = JSON.stringify(spec);
    return this.#conn.transaction(async (tx) => {
      const revision = await nextRevisions(tx);
      let result;
      if (flag === undefined) {
        const ttl = ttlOf(spec);
        result = await tx.query<AgentRow>(
          `UPDATE agents SET active_version = latest_version + 1, latest_version = latest_version + 1,
             spec = $1, tier = $2, ttl_seconds = $3, updated_at = $4, expires_at = $5, revision = $6, writer = $7
           WHERE id = $8 AND latest_version = $9 AND rollout IS NULL RETURNING *`,
          [
            json,
            spec.tier,
            ttl,
            now,
            ttl === null ? null : now + ttl * 1000,
            revision,
            this.writer,
            id,
            expectedLatest,
          ],
        );
      } else {
        const rollout: AgentRollout = {
          candidateVersion: expectedLatest + 1,
          flag,
          startedAt: now,
          flagStartedAt: now,
        };
        result = await tx.query<AgentRow>(
          `UPDATE agents SET latest_version = latest_version + 1, rollout = $1, updated_at = $2, revision = $3, writer = $4
           WHERE id = $5 AND latest_version = $6 AND rollout IS NULL RETURNING *`,
          [JSON.stringify(rollout), now, revision, this.writer, id, expectedLatest],
        );
      }
      const row = result.rows[0];
      if (row === undefined) {
        const current = await getAgent(tx, id, false);
        if (current === undefined) throw agentNotFound(id);
        if (current.latest_version !== expectedLatest) {
          throw versionConflict(id, expectedLatest, current.latest_version);
        }
        throw rolloutInProgress(id, candidateOf(current.rollout as string), current.active_version);
      }
      await tx.query(
        'INSERT INTO agent_versions (agent_id, version, spec, created_at) VALUES ($1, $2, $3, $4)',
        [id, row.latest_version, json, now],
      );
      if (flag === undefined) await replaceLabels(tx, row, spec.labels);
      return row;
    });
  }

  activateVersion(id: string, version: number, now: number): Promise<AgentRow> {
    return this.#conn.transaction(async (tx) => {
      const revision = await nextRevisions(tx);
      const current = await getAgent(tx, id, true);
      if (current === undefined) throw agentNotFound(id);
      const v = await mustGetVersion(tx, id, version);
      if (current.rollout !== null && version !== current.active_version)
        throw rolloutInProgress(id, candidateOf(current.rollout), current.active_version);
      return this.#activate(tx, v, current.rollout, now, revision);
    });
  }

  setRollout(
    id: string,
    expectedCandidate: number | null,
    rollout: AgentRollout | null,
    now: number,
    activateVersion: number | undefined,
  ): Promise<AgentRow> {
    const json = rollout === null ? null : JSON.stringify(rollout);
    const candidate = rollout?.candidateVersion ?? null;
    return this.#conn.transaction(async (tx) => {
      const revision = await nextRevisions(tx);
      const current = await getAgent(tx, id, true);
      if (current === undefined) throw agentNotFound(id);
      const running = current.rollout === null ? null : candidateOf(current.rollout);
      if (running !== expectedCandidate) throw rolloutConflict(id, expectedCandidate, running);
      const v = activateVersion === undefined ? undefined : await mustGetVersion(tx, id, activateVersion);
      if (candidate !== null) {
        await mustGetVersion(tx, id, candidate);
        if (candidate === (activateVersion ?? current.active_version)) throw candidateIsActive(candidate);
      }
      if (v !== undefined && v.version !== current.active_version)
        return this.#activate(tx, v, json, now, revision);
      const { rows } = await tx.query<AgentRow>(
        'UPDATE agents SET rollout = $1, updated_at = $2, revision = $3, writer = $4 WHERE id = $5 RETURNING *',
        [json, now, revision, this.writer, id],
      );
      return rows[0] as AgentRow;
    });
  }

  /**
   * Deletes an agent (its versions and labels go through ON DELETE CASCADE) and leaves a tombstone
   * for the change feed; false when it did not exist.
   */
  delete(id: string): Promise<boolean> {
    return this.#conn.transaction(async (tx) => {
      await lockRevisions(tx);
      const { rows } = await tx.query<{ project: string; name: string }>(
        'DELETE FROM agents WHERE id = $1 RETURNING project, name',
        [id],
      );
      const gone = rows[0];
      if (gone === undefined) return false;
      await this.#tombstones(tx, [{ id, ...gone }]);
      return true;
    });
  }

  /** Deletes up to `limit` agents of a project, each with its tombstone; returns how many. */
  deleteProject(project: string, limit: number): Promise<number> {
    return this.#conn.transaction(async (tx) => {
      await lockRevisions(tx);
      // In id order, as every writer that locks several agents does.
      const { rows } = await tx.query<{ id: string; project: string; name: string }>(
        'SELECT id, project, name FROM agents WHERE project = $1 ORDER BY id LIMIT $2 FOR UPDATE',
        [project, limit],
      );
      if (rows.length === 0) return 0;
      await tx.query('DELETE FROM agents WHERE id = ANY($1::text[])', [rows.map((r) => r.id)]);
      await this.#tombstones(tx, rows);
      return rows.length;
    });
  }

  /** Makes stored version `v` active with `rollout` (JSON or null), stamped with `revision`. */
  async #activate(
    tx: Transaction,
    v: VersionRow,
    rollout: string | null,
    now: number,
    revision: number,
  ): Promise<AgentRow> {
    const spec = JSON.parse(v.spec) as IndexedSpec;
    const ttl = ttlOf(spec);
    const { rows } = await tx.query<AgentRow>(
      `UPDATE agents SET active_version = $1, spec = $2, tier = $3, ttl_seconds = $4, updated_at = $5,
         expires_at = $6, rollout = $7, revision = $8, writer = $9
       WHERE id = $10 RETURNING *`,
      [
        v.version,
        v.spec,
        spec.tier,
        ttl,
        now,
        ttl === null ? null : now + ttl * 1000,
        rollout,
        revision,
        this.writer,
        v.agent_id,
      ],
    );
    const row = rows[0] as AgentRow;
    await replaceLabels(tx, row, spec.labels);
    return row;
  }

  /**
   * Takes one revision per deleted agent for its tombstone, and drops tombstones older than
   * changeHistory revisions (a watcher whose cursor is older is told its page is incomplete).
   */
  async #tombstones(
    tx: Transaction,
    gone: readonly { id: string; project: string; name: string }[],
  ): Promise<void> {
    const head = await nextRevisions(tx, gone.length);
    const horizon = head - this.#changeHistory;
    await tx.query(
      `WITH t AS (
         INSERT INTO agent_tombstones (revision, agent_id, project, name, writer)
         SELECT $1 + g.ord, g.id, g.project, g.name, $5
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS g (id, project, name, ord)),
       pruned AS (DELETE FROM agent_tombstones WHERE revision <= $6)
       UPDATE agent_revision SET pruned_through = greatest(pruned_through, $6) WHERE id = 1 AND $6 > 0`,
      [
        head - gone.length,
        gone.map((g) => g.id),
        gone.map((g) => g.project),
        gone.map((g) => g.name),
        this.writer,
        horizon,
      ],
    );
  }
}
