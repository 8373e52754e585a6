/**
 * The PostgreSQL AgentStore, for several nodes on one database: the same tables and keyset pages
 * as SQLite's, (project, name) unique so that of concurrent creates on any nodes one wins
 * (`AGENT_EXISTS` for the others), optimistic `expectedLatest` checks made by the UPDATE's WHERE,
 * and every definition write stamped with the next revision for the change feed. Definition
 * writes take that revision first, in their transaction (agent-writes.ts), which serialises them
 * cluster-wide; they are rare next to reads and runs, which take no such lock.
 */
import { addRunTotals, zeroRunTotals } from '../usage-paging.ts';
import { getUsage, listUsage, upsertUsage } from './usage.ts';
import { randomInt } from 'node:crypto';
import { validationError } from '../../core/errors.ts';
import { intOption } from '../../core/options.ts';
import { agentExists, agentNotFound } from '../agent-store-shared.ts';
import { checkIndexedSpec } from '../indexed-spec.ts';
import { boundedPage, decodeCursor, encodeCursor, keysetPage, pageLimit } from '../paging.ts';
import type {
  AddVersionOptions,
  AgentRecord,
  AgentRollout,
  AgentStore,
  AgentUse,
  AgentUsageRecord,
  ListUsageQuery,
  AgentVersionRecord,
  IndexedSpec,
  ListAgentsQuery,
  NewAgent,
  Page,
  SetRolloutOptions,
  StoredFlag,
} from '../ports.ts';
import { AgentWrites, ttlOf } from './agent-writes.ts';
import { PostgresChangeFeed } from './change-feed.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase } from './database.ts';
import { uniqueViolation } from './errors.ts';
import { bytesBounded, PAGE_BUDGET } from './paging.ts';
import { type AgentRow, toAgent, toVersion, type VersionRow } from '../rows.ts';

/** Uses per statement in recordUse: bounds how many rows one write locks. */
const USES_PER_WRITE = 1000;

const AGENT_BYTES = 'octet_length(q.spec) + coalesce(octet_length(q.rollout), 0)';

/** An AgentStore on a PostgreSQL database shared with the other stores (open.ts opens them together). */
export class PostgresAgentStore implements AgentStore {
  readonly #conn: StoreConnection;
  readonly #writes: AgentWrites;
  /** Definition changes made through other store instances (other nodes, `agentpool apply`). */
  readonly changeFeed: PostgresChangeFeed;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'agent store');
    // This instance's mark on the rows it writes, so its own feed skips them (as SQLite's).
    const writer = randomInt(1, 2 ** 47);
    this.#writes = new AgentWrites(this.#conn, writer, db.options.changeHistory);
    this.changeFeed = new PostgresChangeFeed(this.#conn, writer);
  }

  async create<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    agent: NewAgent<S>,
  ): Promise<AgentRecord<S, F>> {
    checkIndexedSpec(agent.spec);
    const spec = JSON.stringify(agent.spec);
    const ttl = ttlOf(agent.spec);
    const expiresAt = ttl === null ? null : agent.now + ttl * 1000;
    const labels = Object.entries(agent.spec.labels);
    // One statement: the revision, the agent, version 1 and its labels, all or nothing. The unique
    // (project, name) decides a race between nodes; the loser's statement leaves no trace.
    const revision = await this.#conn.guard(async () => {
      try {
        const result = await this.#conn.db.query<{ head: number }>(
          `WITH rev AS (UPDATE agent_revision SET head = head + 1 WHERE id = 1 RETURNING head),
           a AS (
             INSERT INTO agents (id, project, name, active_version, latest_version, spec, tier, ttl_seconds,
                                 created_at, updated_at, last_used_at, expires_at, rollout, revision, writer)
             SELECT $1, $2, $3, 1, 1, $4, $5, $6, $7, $7, $7, $8, NULL, rev.head, $9 FROM rev
             RETURNING id),
           v AS (INSERT INTO agent_versions (agent_id, version, spec, created_at) SELECT id, 1, $4, $7 FROM a),
           l AS (
             INSERT INTO agent_labels (agent_id, project, name, key, value)
             SELECT a.id, $2, $3, x.key, x.value FROM a, unnest($10::text[], $11::text[]) AS x (key, value))
           SELECT head FROM rev`,
          [
            agent.id,
            agent.project,
            agent.name,
            spec,
            agent.spec.tier,
            ttl,
            agent.now,
            expiresAt,
            this.#writes.writer,
            labels.map(([k]) => k),
            labels.map(([, v]) => v),
          ],
        );
        return result.rows[0]?.head ?? 0;
      } catch (err) {
        const constraint = uniqueViolation(err);
        if (constraint !== undefined) throw agentExists(agent, constraint === 'agents_project_name');
        throw err;
      }
    });
    this.changeFeed.observe(revision);
    return toAgent<S, F>({
      id: agent.id,
      project: agent.project,
      name: agent.name,
      active_version: 1,
      latest_version: 1,
      spec,
      tier: agent.spec.tier,
      ttl_seconds: ttl,
      created_at: agent.now,
      updated_at: agent.now,
      last_used_at: agent.now,
      expires_at: expiresAt,
      rollout: null,
      revision,
      writer: this.#writes.writer,
    });
  }

  async getById<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    const [row] = await this.#conn.rows<AgentRow>('SELECT * FROM agents WHERE id = $1', [id], 'agent_by_id');
    return row && toAgent<S, F>(row);
  }

  async getByName<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    name: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    const [row] = await this.#conn.rows<AgentRow>(
      'SELECT * FROM agents WHERE project = $1 AND name = $2',
      [project, name],
      'agent_by_name',
    );
    return row && toAgent<S, F>(row);
  }

  async list<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    query: ListAgentsQuery,
  ): Promise<Page<AgentRecord<S, F>>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? null : decodeCursor('name', query.cursor);
    const labels = Object.entries(query.labels ?? {});
    const q = query.q === undefined || query.q === '' ? null : query.q;
    let rows: AgentRow[];
    if (labels.length === 0) {
      const inner = `SELECT * FROM agents WHERE project = $1 AND ($2::text IS NULL OR name > $2)
                       AND ($5::text IS NULL OR strpos(name, $5) > 0)
                     ORDER BY name LIMIT $3`;
      rows = await this.#conn.rows<AgentRow>(bytesBounded(inner, 'q.name', AGENT_BYTES, '$4'), [
        project,
        after,
        limit + 1,
        PAGE_BUDGET,
        q,
      ]);
    } else {
      // The scan walks one label's index in name order and checks the others per row, so the
      // rarest label drives it (probed in one statement, each count capped at 4096).
      let driver = 0;
      if (labels.length > 1) {
        const probe = await this.#conn.rows<{ n: number }>(
          `SELECT (SELECT count(*) FROM (SELECT 1 FROM agent_labels l
                    WHERE l.project = $1 AND l.key = x.key AND l.value = x.value LIMIT 4096) s) AS n
           FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x (key, value, ord) ORDER BY x.ord`,
          [project, labels.map(([k]) => k), labels.map(([, v]) => v)],
        );
        const sizes = probe.map((r) => r.n);
        driver = sizes.indexOf(Math.min(...sizes));
      }
      const [key, value] = labels[driver] as [string, string];
      const rest = labels.filter((_, i) => i !== driver);
      const inner = `
        SELECT a.* FROM agent_labels l JOIN agents a ON a.id = l.agent_id
        WHERE l.project = $1 AND l.key = $2 AND l.value = $3 AND ($4::text IS NULL OR l.name > $4)
          AND ($9::text IS NULL OR strpos(l.name, $9) > 0)
          AND NOT EXISTS (
            SELECT 1 FROM unnest($5::text[], $6::text[]) AS j (key, value) WHERE NOT EXISTS (
              SELECT 1 FROM agent_labels x WHERE x.agent_id = l.agent_id AND x.key = j.key AND x.value = j.value))
        ORDER BY l.name LIMIT $7`;
      rows = await this.#conn.rows<AgentRow>(bytesBounded(inner, 'q.name', AGENT_BYTES, '$8'), [
        project,
        key,
        value,
        after,
        rest.map(([k]) => k),
        rest.map(([, v]) => v),
        limit + 1,
        PAGE_BUDGET,
        q,
      ]);
    }
    return boundedPage(
      rows,
      limit,
      (r) => toAgent<S, F>(r),
      (r) => encodeCursor('name', r.name),
    );
  }

  async listByTier<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    tier: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentRecord<S, F>>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? null : decodeCursor('tier', query.cursor);
    const rows = await this.#conn.rows<AgentRow>(
      'SELECT * FROM agents WHERE tier = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3',
      [tier, after, limit + 1],
    );
    const p = keysetPage(rows, limit, (r) => encodeCursor('tier', r.id));
    return { data: p.data.map((r) => toAgent<S, F>(r)), nextCursor: p.nextCursor };
  }

  async count(project: string): Promise<number> {
    const [row] = await this.#conn.rows<{ n: number }>(
      'SELECT count(*) AS n FROM agents WHERE project = $1',
      [project],
    );
    return row?.n ?? 0;
  }

  async addVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedLatest: number,
    spec: S,
    now: number,
    options: AddVersionOptions<F> = {},
  ): Promise<AgentRecord<S, F>> {
    checkIndexedSpec(spec);
    return toAgent<S, F>(
      await this.#written(this.#writes.addVersion(id, expectedLatest, spec, now, options.rollout)),
    );
  }

  async activateVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    version: number,
    now: number,
  ): Promise<AgentRecord<S, F>> {
    return toAgent<S, F>(await this.#written(this.#writes.activateVersion(id, version, now)));
  }

  async setRollout<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedCandidate: number | null,
    rollout: AgentRollout<F> | null,
    now: number,
    options: SetRolloutOptions = {},
  ): Promise<AgentRecord<S, F>> {
    return toAgent<S, F>(
      await this.#written(this.#writes.setRollout(id, expectedCandidate, rollout, now, options.activate)),
    );
  }

  async getVersion<S extends IndexedSpec>(
    id: string,
    version: number,
  ): Promise<AgentVersionRecord<S> | undefined> {
    const [row] = await this.#conn.rows<VersionRow>(
      'SELECT * FROM agent_versions WHERE agent_id = $1 AND version = $2',
      [id, version],
      'agent_version',
    );
    return row && toVersion<S>(row);
  }

  async listVersions<S extends IndexedSpec>(
    id: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentVersionRecord<S>>> {
    const limit = pageLimit(query.limit);
    let before = 2 ** 31 - 1;
    if (query.cursor !== undefined) {
      before = Number(decodeCursor('version', query.cursor));
      if (!Number.isInteger(before)) throw validationError('cursor', 'is not a cursor of this listing');
    }
    const inner = `SELECT * FROM agent_versions WHERE agent_id = $1 AND version < $2
                   ORDER BY version DESC LIMIT $3`;
    const rows = await this.#conn.rows<VersionRow>(
      bytesBounded(inner, 'q.version DESC', 'octet_length(q.spec)', '$4'),
      [id, Math.min(before, 2 ** 31 - 1), limit + 1, PAGE_BUDGET],
    );
    return boundedPage(
      rows,
      limit,
      (r) => toVersion<S>(r),
      (r) => encodeCursor('version', String(r.version)),
    );
  }

  async delete(id: string): Promise<boolean> {
    return this.#conn.guard(() => this.#writes.delete(id));
  }

  async deleteProjectAgents(project: string, limit: number): Promise<number> {
    const max = pageLimit(limit);
    return this.#conn.guard(() => this.#writes.deleteProject(project, max));
  }

  async touch(id: string, at: number): Promise<void> {
    const result = await this.#conn.result(
      `UPDATE agents SET last_used_at = $1::bigint,
         expires_at = CASE WHEN ttl_seconds IS NULL THEN NULL ELSE $1::bigint + ttl_seconds * 1000 END
       WHERE id = $2`,
      [at, id],
    );
    if (result.rowCount === 0) throw agentNotFound(id);
  }

  async recordUse(uses: readonly AgentUse[]): Promise<void> {
    // The latest use of each agent, in id order: two nodes recording overlapping agents lock
    // their rows in the same order, so they wait for each other instead of deadlocking.
    const latest = new Map<string, number>();
    for (const use of uses) latest.set(use.id, Math.max(use.at, latest.get(use.id) ?? -Infinity));
    const sorted = [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < sorted.length; i += USES_PER_WRITE) {
      const batch = sorted.slice(i, i + USES_PER_WRITE);
      // Only a later use moves it: uses are recorded late and out of order (coalesced per interval).
      await this.#conn.result(
        `WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS u (id, at)),
         locked AS MATERIALIZED (
           SELECT a.id FROM agents a JOIN u ON a.id = u.id WHERE a.last_used_at < u.at
           ORDER BY a.id FOR UPDATE OF a)
         UPDATE agents a SET last_used_at = u.at,
           expires_at = CASE WHEN a.ttl_seconds IS NULL THEN NULL ELSE u.at + a.ttl_seconds * 1000 END
         FROM u WHERE a.id = u.id AND a.id IN (SELECT id FROM locked) AND a.last_used_at < u.at`,
        [batch.map(([id]) => id), batch.map(([, at]) => at)],
      );
    }
    // Usage summed per agent, in id order like the rows above.
    const summed = new Map<string, AgentUse>();
    for (const use of uses) {
      const known = summed.get(use.id);
      summed.set(
        use.id,
        known === undefined
          ? use
          : {
              id: use.id,
              at: Math.max(known.at, use.at),
              runs: addRunTotals(known.runs ?? zeroRunTotals(), use.runs ?? zeroRunTotals()),
            },
      );
    }
    const ordered = [...summed.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (let i = 0; i < ordered.length; i += USES_PER_WRITE) {
      await upsertUsage(this.#conn, ordered.slice(i, i + USES_PER_WRITE));
    }
  }

  async getUsage(id: string): Promise<AgentUsageRecord | undefined> {
    return getUsage(this.#conn, id);
  }

  async listUsage(query: ListUsageQuery): Promise<Page<AgentUsageRecord>> {
    return listUsage(this.#conn, query);
  }

  async listExpired<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    now: number,
    limit: number,
  ): Promise<AgentRecord<S, F>[]> {
    const max = intOption('limit', limit, 100, 1);
    const rows = await this.#conn.rows<AgentRow>(
      `SELECT * FROM agents WHERE expires_at IS NOT NULL AND expires_at <= $1
       ORDER BY expires_at, id LIMIT $2`,
      [now, max],
    );
    return rows.map((r) => toAgent<S, F>(r));
  }

  /** Starts the change feed's listener; the stores' opener awaits it. */
  async listen(): Promise<void> {
    await this.changeFeed.listen();
  }

  async close(): Promise<void> {
    try {
      await this.changeFeed.close();
    } finally {
      await this.#conn.close();
    }
  }

  /** A definition write's row, once the feed has noted its revision. */
  async #written(write: Promise<AgentRow>): Promise<AgentRow> {
    const row = await this.#conn.guard(() => write);
    this.changeFeed.observe(row.revision);
    return row;
  }
}
