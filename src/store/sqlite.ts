/**
 * The SQLite AgentStore, the embedded default: one file (WAL), schema migrations versioned in code
 * and tracked by `PRAGMA user_version`, every statement prepared once, keyset pagination only, so
 * reads stay flat from a hundred agents to millions.
 */
import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import { validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import { checkIndexedSpec } from './indexed-spec.ts';
import { boundedPage, decodeCursor, encodeCursor, keysetPage, pageLimit } from './paging.ts';
import type {
  AddVersionOptions,
  AgentUsageRecord,
  ListUsageQuery,
  AgentChangeFeed,
  AgentRecord,
  AgentRollout,
  AgentStore,
  AgentUse,
  AgentVersionRecord,
  IndexedSpec,
  ListAgentsQuery,
  NewAgent,
  Page,
  SetRolloutOptions,
  StoredFlag,
} from './ports.ts';
import { type AgentRow, toAgent, toVersion, type VersionRow } from './rows.ts';
import { prepareStatements } from './sqlite-schema.ts';
import { SqliteChangeFeed } from './sqlite-change-feed.ts';
import { SqliteConnection, type SqliteDatabase, type SqliteStoreSource } from './sqlite-connection.ts';
import { SqliteUsage } from './sqlite-usage.ts';
import {
  agentExists,
  agentNotFound,
  candidateIsActive,
  rolloutConflict,
  rolloutInProgress,
  versionConflict,
  versionNotFound,
} from './agent-store-shared.ts';

/** Options of {@link SqliteAgentStore}: its file (`path`) or a database it shares with other stores. */
export type SqliteAgentStoreOptions = SqliteStoreSource & {
  /**
   * How long a write waits for another connection's lock before failing, ms (with `path`; a shared
   * `database` has its own).
   * @default 5000
   */
  readonly busyTimeoutMs?: number | undefined;
  /**
   * How many definition writes back a deletion stays in the change feed, for the pools of other
   * processes on the same file to retire the deleted agent's instance. A pool that has not looked
   * for longer forgets every instance it holds (see AgentChangePage.complete).
   * @default 100000
   */
  readonly changeHistory?: number | undefined;
};

function ttlOf(spec: IndexedSpec): number | null {
  return typeof spec.ttlSeconds === 'number' ? spec.ttlSeconds : null;
}

/** Uses per transaction in recordUse: bounds how long one write holds the lock. */
const USES_PER_WRITE = 1000;

/** An AgentStore in one SQLite file, through better-sqlite3. */
export class SqliteAgentStore implements AgentStore {
  readonly #conn: SqliteConnection;
  readonly #s: Statements;
  readonly #w: ReturnType<typeof prepareWrites>;
  readonly #usage: SqliteUsage;
  /** Definition changes made through other store instances on this file. */
  readonly changeFeed: AgentChangeFeed;

  constructor(options: SqliteAgentStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    const changeHistory = intOption('changeHistory', options.changeHistory, 100_000, 1);
    // This instance's mark on the rows it writes, so its own feed skips them; random, so that
    // processes (and several stores in one process) need no coordination to tell themselves apart.
    const writer = randomInt(1, 2 ** 47);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'agent store');
    [this.#s, this.#w, this.#usage] = this.#conn.prepare((db) => {
      const s = prepareStatements(db);
      const usage = new SqliteUsage(db);
      return [s, prepareWrites(db, s, writer, changeHistory, this.#conn.database, usage), usage] as const;
    });
    this.changeFeed = new SqliteChangeFeed(this.#conn, this.#s, writer);
  }

  /** The file this store writes to. */
  get path(): string {
    return this.#conn.path;
  }

  async create<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    agent: NewAgent<S>,
  ): Promise<AgentRecord<S, F>> {
    checkIndexedSpec(agent.spec);
    return this.#conn.guard(() => {
      const spec = JSON.stringify(agent.spec);
      const ttl = ttlOf(agent.spec);
      const row: AgentRow = {
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
        expires_at: ttl === null ? null : agent.now + ttl * 1000,
        rollout: null,
        revision: 0, // set by the write
        writer: 0,
      };
      try {
        this.#w.create(row, agent.spec.labels);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw agentExists(agent, String((err as Error).message).includes('agents.name'));
        }
        throw err;
      }
      return toAgent<S, F>(row);
    });
  }

  async getById<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getById.get(id);
      return row && toAgent<S, F>(row);
    });
  }

  async getByName<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    name: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getByName.get(project, name);
      return row && toAgent<S, F>(row);
    });
  }

  async list<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    query: ListAgentsQuery,
  ): Promise<Page<AgentRecord<S, F>>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor('name', query.cursor);
    const labels = Object.entries(query.labels ?? {});
    return this.#conn.guard(() => {
      const s = this.#s;
      const q = query.q === undefined || query.q === '' ? null : query.q;
      let rows: Iterable<AgentRow>;
      if (labels.length === 0 && q !== null) {
        rows =
          after === undefined
            ? s.searchFirst.iterate(project, q, limit + 1)
            : s.searchAfter.iterate(project, after, q, limit + 1);
      } else if (labels.length === 0) {
        rows =
          after === undefined
            ? s.listFirst.iterate(project, limit + 1)
            : s.listAfter.iterate(project, after, limit + 1);
      } else {
        // The scan walks one label's index in name order and checks the others per row, so the
        // rarest label drives it. Any driver gives the same pages; this only bounds the rows read.
        let driver = 0;
        if (labels.length > 1) {
          const sizes = labels.map(([key, value]) => s.probeLabel.get(project, key, value) as number);
          driver = sizes.indexOf(Math.min(...sizes));
        }
        const [key, value] = labels[driver] as [string, string];
        const rest = JSON.stringify(Object.fromEntries(labels.filter((_, i) => i !== driver)));
        const args = { project, key, value, rest, q, limit: limit + 1 };
        rows =
          after === undefined
            ? s.listLabelsFirst.iterate(args)
            : s.listLabelsAfter.iterate({ ...args, after });
      }
      return boundedPage(
        rows,
        limit,
        (r) => toAgent<S, F>(r),
        (r) => encodeCursor('name', r.name),
      );
    });
  }

  async listByTier<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    tier: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentRecord<S, F>>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor('tier', query.cursor);
    return this.#conn.guard(() => {
      const s = this.#s;
      const rows =
        after === undefined ? s.tierFirst.all(tier, limit + 1) : s.tierAfter.all(tier, after, limit + 1);
      const p = keysetPage(rows, limit, (r) => encodeCursor('tier', r.id));
      return { data: p.data.map((r) => toAgent<S, F>(r)), nextCursor: p.nextCursor };
    });
  }

  async count(project: string): Promise<number> {
    return this.#conn.guard(() => this.#s.count.get(project) as number);
  }

  async addVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedLatest: number,
    spec: S,
    now: number,
    options: AddVersionOptions<F> = {},
  ): Promise<AgentRecord<S, F>> {
    checkIndexedSpec(spec);
    return this.#conn.guard(() =>
      toAgent<S, F>(this.#w.addVersion(id, expectedLatest, spec, now, options.rollout)),
    );
  }

  async activateVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    version: number,
    now: number,
  ): Promise<AgentRecord<S, F>> {
    return this.#conn.guard(() => toAgent<S, F>(this.#w.activateVersion(id, version, now)));
  }

  async setRollout<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedCandidate: number | null,
    rollout: AgentRollout<F> | null,
    now: number,
    options: SetRolloutOptions = {},
  ): Promise<AgentRecord<S, F>> {
    const json = rollout === null ? null : JSON.stringify(rollout);
    return this.#conn.guard(() =>
      toAgent<S, F>(
        this.#w.setRollout(
          id,
          expectedCandidate,
          rollout?.candidateVersion ?? null,
          json,
          now,
          options.activate,
        ),
      ),
    );
  }

  async getVersion<S extends IndexedSpec>(
    id: string,
    version: number,
  ): Promise<AgentVersionRecord<S> | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getVersion.get(id, version);
      return row && toVersion<S>(row);
    });
  }

  async listVersions<S extends IndexedSpec>(
    id: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentVersionRecord<S>>> {
    const limit = pageLimit(query.limit);
    let before = Number.MAX_SAFE_INTEGER;
    if (query.cursor !== undefined) {
      before = Number(decodeCursor('version', query.cursor));
      if (!Number.isInteger(before)) throw validationError('cursor', 'is not a cursor of this listing');
    }
    return this.#conn.guard(() => {
      return boundedPage(
        this.#s.listVersions.iterate(id, before, limit + 1),
        limit,
        (r) => toVersion<S>(r),
        (r) => encodeCursor('version', String(r.version)),
      );
    });
  }

  async delete(id: string): Promise<boolean> {
    return this.#conn.guard(() => this.#w.delete(id));
  }

  async deleteProjectAgents(project: string, limit: number): Promise<number> {
    return this.#conn.guard(() => this.#w.deleteProject(project, pageLimit(limit)));
  }

  async touch(id: string, at: number): Promise<void> {
    this.#conn.guard(() => {
      if (this.#s.touch.run({ at, id }).changes === 0) throw agentNotFound(id);
    });
  }

  async recordUse(uses: readonly AgentUse[]): Promise<void> {
    this.#conn.guard(() => {
      for (let i = 0; i < uses.length; i += USES_PER_WRITE)
        this.#w.recordUse(uses.slice(i, i + USES_PER_WRITE));
    });
  }

  async getUsage(id: string): Promise<AgentUsageRecord | undefined> {
    return this.#conn.guard(() => this.#usage.get(id));
  }

  async listUsage(query: ListUsageQuery): Promise<Page<AgentUsageRecord>> {
    return this.#conn.guard(() => this.#usage.list(query));
  }

  async listExpired<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    now: number,
    limit: number,
  ): Promise<AgentRecord<S, F>[]> {
    const max = intOption('limit', limit, 100, 1);
    return this.#conn.guard(() => this.#s.listExpired.all(now, max).map((r) => toAgent<S, F>(r)));
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * The writes that must be atomic. They run as IMMEDIATE transactions: the write lock is taken up
 * front, so two processes on one file queue on busy_timeout instead of failing to upgrade a read lock.
 */
function prepareWrites(
  db: Database.Database,
  s: Statements,
  writer: number,
  changeHistory: number,
  database: SqliteDatabase,
  usage: SqliteUsage,
) {
  const writeLabels = (id: string, project: string, name: string, labels: IndexedSpec['labels']) => {
    for (const [key, value] of Object.entries(labels)) s.insertLabel.run(id, project, name, key, value);
  };
  const replaceLabels = (row: AgentRow, labels: IndexedSpec['labels']) => {
    s.deleteLabels.run(row.id);
    writeLabels(row.id, row.project, row.name, labels);
  };
  /** The next revision of the change feed: one per definition write, in commit order. */
  const stamp = (): [number, number] => {
    database.revisionsTaken++; // counted even if the write rolls back: the feed then reads once more
    return [s.nextRevision.get() as number, writer];
  };
  const create = db.transaction((row: AgentRow, labels: IndexedSpec['labels']): void => {
    [row.revision, row.writer] = stamp();
    s.insertAgent.run(row);
    s.insertVersion.run(row.id, 1, row.spec, row.created_at);
    writeLabels(row.id, row.project, row.name, labels);
  });
  /** The version's row; VERSION_NOT_FOUND when the agent has no such version. */
  const mustGetVersion = (id: string, version: number): VersionRow => {
    const v = s.getVersion.get(id, version);
    if (v === undefined) {
      throw versionNotFound(id, version);
    }
    return v;
  };
  /** Makes stored version `v` active, setting the rollout to `rollout` (JSON or null). */
  const activate = (v: VersionRow, rollout: string | null, now: number): AgentRow => {
    const spec = JSON.parse(v.spec) as IndexedSpec;
    const ttl = ttlOf(spec);
    const expiresAt = ttl === null ? null : now + ttl * 1000;
    const row = s.setActive.get(
      v.version,
      v.spec,
      spec.tier,
      ttl,
      now,
      expiresAt,
      rollout,
      ...stamp(),
      v.agent_id,
    );
    replaceLabels(row as AgentRow, spec.labels);
    return row as AgentRow;
  };
  const addVersion = db.transaction(
    (id: string, expectedLatest: number, spec: IndexedSpec, now: number, flag: StoredFlag | undefined) => {
      const json = JSON.stringify(spec);
      let row: AgentRow | undefined;
      if (flag === undefined) {
        const ttl = ttlOf(spec);
        const expiresAt = ttl === null ? null : now + ttl * 1000;
        row = s.bumpVersion.get(json, spec.tier, ttl, now, expiresAt, ...stamp(), id, expectedLatest);
      } else {
        const rollout: AgentRollout = {
          candidateVersion: expectedLatest + 1,
          flag,
          startedAt: now,
          flagStartedAt: now,
        };
        row = s.addCandidate.get(JSON.stringify(rollout), now, ...stamp(), id, expectedLatest);
      }
      if (row === undefined) {
        const current = s.getById.get(id);
        if (current === undefined) throw agentNotFound(id);
        if (current.latest_version !== expectedLatest) {
          throw versionConflict(id, expectedLatest, current.latest_version);
        }
        throw rolloutInProgress(id, candidateOf(current.rollout as string), current.active_version);
      }
      s.insertVersion.run(id, row.latest_version, json, now);
      if (flag === undefined) replaceLabels(row, spec.labels);
      return row;
    },
  );
  const activateVersion = db.transaction((id: string, version: number, now: number) => {
    const current = s.getById.get(id);
    if (current === undefined) throw agentNotFound(id);
    const v = mustGetVersion(id, version);
    if (current.rollout !== null && version !== current.active_version)
      throw rolloutInProgress(id, candidateOf(current.rollout as string), current.active_version);
    return activate(v, current.rollout, now);
  });
  const setRollout = db.transaction(
    (
      id: string,
      expectedCandidate: number | null,
      candidate: number | null,
      rollout: string | null,
      now: number,
      activateVersion: number | undefined,
    ) => {
      const current = s.getById.get(id);
      if (current === undefined) throw agentNotFound(id);
      const running = current.rollout === null ? null : candidateOf(current.rollout);
      if (running !== expectedCandidate) throw rolloutConflict(id, expectedCandidate, running);
      const v = activateVersion === undefined ? undefined : mustGetVersion(id, activateVersion);
      if (candidate !== null) {
        mustGetVersion(id, candidate);
        if (candidate === (activateVersion ?? current.active_version)) throw candidateIsActive(candidate);
      }
      if (v !== undefined && v.version !== current.active_version) return activate(v, rollout, now);
      return s.setRollout.get(rollout, now, ...stamp(), id) as AgentRow;
    },
  );
  // Versions and labels go with the agent through ON DELETE CASCADE; a tombstone tells the
  // change feed, and tombstones older than changeHistory revisions are dropped.
  const removeOne = (id: string): boolean => {
    const gone = s.deleteAgent.get(id);
    if (gone === undefined) return false;
    const [revision] = stamp();
    s.insertTombstone.run(revision, id, gone.project, gone.name, writer);
    const horizon = revision - changeHistory;
    if (horizon > 0) {
      s.pruneTombstones.run(horizon);
      s.setPrunedThrough.run(horizon);
    }
    return true;
  };
  const remove = db.transaction(removeOne);
  // A project's agents go a batch at a time, each with its tombstone like a single delete, so other
  // processes' pools retire them too.
  const projectBatch = db
    .prepare<[string, number], string>('SELECT id FROM agents WHERE project = ? LIMIT ?')
    .pluck();
  const removeProjectBatch = db.transaction((project: string, limit: number): number => {
    let deleted = 0;
    for (const id of projectBatch.all(project, limit)) if (removeOne(id)) deleted++;
    return deleted;
  });
  const recordUse = db.transaction((uses: readonly AgentUse[]) => {
    for (const use of uses) {
      s.recordUse.run({ id: use.id, at: use.at });
      usage.record(use);
    }
  });
  return {
    create: create.immediate,
    addVersion: addVersion.immediate,
    activateVersion: activateVersion.immediate,
    setRollout: setRollout.immediate,
    delete: remove.immediate,
    deleteProject: removeProjectBatch.immediate,
    recordUse: recordUse.immediate,
  };
}

function candidateOf(rollout: string): number {
  return (JSON.parse(rollout) as AgentRollout).candidateVersion;
}
