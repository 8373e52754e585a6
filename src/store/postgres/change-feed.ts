/**
 * The PostgreSQL agent store's change feed: the definition writes other store instances (other
 * nodes, `agentpool apply -f`) made, read from the revision every write stamps on its agent row or
 * tombstone, as SQLite's feed does (sqlite-change-feed.ts).
 *
 * `maybeChangedSince` runs before every run and must not cost a statement. Every new revision is
 * announced by the database itself (a trigger on the counter calls `pg_notify` at commit), and the
 * feed keeps one connection LISTENing: the highest revision heard is the known head, so the check
 * is a comparison in memory. While that connection is down (PostgreSQL restarted, the network cut)
 * nothing can be heard, so the feed says "maybe" until it is back and has re-read the head: a run
 * then reads the changes (one statement) instead of trusting silence.
 */
import { validationError } from '../../core/errors.ts';
import { pageLimit } from '../paging.ts';
import type { AgentChange, AgentChangeFeed, AgentChangePage, AgentRollout, StoredFlag } from '../ports.ts';
import type { StoreConnection } from './connection.ts';
import type { Listener } from './database.ts';

/** A row of the feed's query: an agent row's identity and state, or a tombstone. */
interface ChangeRow {
  revision: number;
  id: string;
  project: string;
  name: string;
  active_version: number | null;
  latest_version: number | null;
  rollout: string | null;
  deleted: boolean;
  head: number;
  pruned_through: number;
}

/** How long the listener waits before connecting again, ms: it backs off to 2 s. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** Definition changes made to the database through other store instances. */
export class PostgresChangeFeed implements AgentChangeFeed {
  readonly #conn: StoreConnection;
  readonly #writer: number;
  readonly #channel: string;
  /** The highest revision heard of or read; meaningful while `#listening`. */
  #head = 0;
  #listening = false;
  #listener: Listener | undefined;
  /** Counts connection attempts, so the loss of an old one is not taken for the current one's. */
  #generation = 0;
  #connecting = false;
  #attempts = 0;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  /** Callers of caughtUp() waiting to hear of a revision; each resolves when it is heard or the listener drops. */
  #waiters: { revision: number; resolve: () => void }[] = [];

  constructor(conn: StoreConnection, writer: number) {
    this.#conn = conn;
    this.#writer = writer;
    this.#channel = `agentpool_changes:${conn.db.options.schema}`;
  }

  /** Whether the listener is connected: while false, `maybeChangedSince` always says true. */
  get listening(): boolean {
    return this.#listening;
  }

  /** The server process of the listening connection (pg_stat_activity's pid), or null while down. */
  get listenerPid(): number | null {
    return this.#listening ? (this.#listener?.pid ?? null) : null;
  }

  async head(): Promise<string> {
    const [row] = await this.#conn.rows<{ head: number }>('SELECT head FROM agent_revision WHERE id = 1');
    const head = row?.head ?? 0;
    this.observe(head);
    return String(head);
  }

  maybeChangedSince(cursor: string): boolean {
    // Writes through this store move the head too; the read after them finds nothing to report
    // and moves the watcher's cursor past them.
    return !this.#listening || this.#head > Number(cursor);
  }

  async changesSince<F extends StoredFlag = StoredFlag>(
    cursor: string,
    limit: number,
  ): Promise<AgentChangePage<F>> {
    const after = parseCursor(cursor);
    const max = pageLimit(limit);
    // One statement, so the head and the pruning mark are read in the snapshot the rows come from.
    const rows = await this.#conn.rows<ChangeRow>(
      `SELECT c.*, r.head, r.pruned_through FROM agent_revision r LEFT JOIN LATERAL (
         SELECT * FROM (
           SELECT revision, id, project, name, active_version, latest_version, rollout, false AS deleted
             FROM agents WHERE revision > $1 AND writer <> $2
           UNION ALL
           SELECT revision, agent_id, project, name, NULL, NULL, NULL, true
             FROM agent_tombstones WHERE revision > $1 AND writer <> $2
         ) u ORDER BY revision LIMIT $3
       ) c ON true WHERE r.id = 1`,
      [after, this.#writer, max],
    );
    const first = rows[0];
    const head = first?.head ?? 0;
    this.observe(head);
    const changes = rows.filter((r) => r.id !== null).map((r) => toChange<F>(r));
    const more = changes.length === max;
    const last = rows.at(-1);
    return {
      changes,
      cursor: String(more && last !== undefined ? last.revision : head),
      more,
      complete: after >= (first?.pruned_through ?? 0),
    };
  }

  /** Notes a revision this process saw (its own write, a read of the head, a notification). */
  observe(revision: number): void {
    if (revision <= this.#head) return;
    this.#head = revision;
    if (this.#waiters.length === 0) return;
    const waiting = this.#waiters;
    this.#waiters = waiting.filter((w) => w.revision > revision);
    for (const w of waiting) if (w.revision <= revision) w.resolve();
  }

  /**
   * Resolves once the feed has learnt of every definition write committed before the call, by its
   * notification (at once while the listener is down: the feed then says "maybe" anyway). For a
   * caller that must see another node's write in `maybeChangedSince` now, such as a test.
   */
  async caughtUp(): Promise<void> {
    const [row] = await this.#conn.rows<{ head: number }>('SELECT head FROM agent_revision WHERE id = 1');
    const revision = row?.head ?? 0;
    if (!this.#listening || this.#head >= revision) return;
    await new Promise<void>((resolve) => this.#waiters.push({ revision, resolve }));
  }

  #releaseWaiters(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) w.resolve();
  }

  /**
   * Connects the listener; resolves once it listens, or once the first attempt failed (it keeps
   * trying in the background, and the feed says "maybe" until it succeeds).
   */
  async listen(): Promise<void> {
    if (this.#closed || this.#listener !== undefined || this.#connecting) return;
    this.#connecting = true;
    const generation = ++this.#generation;
    try {
      // Named, so an operator (or a test) can tell it from the pool's connections in pg_stat_activity.
      const listener = await this.#conn.db.listen(
        this.#channel,
        `agentpool-listen:${this.#conn.db.options.schema}`,
        {
          notification: (payload) => this.observe(Number(payload)),
          lost: () => this.#lost(generation),
        },
      );
      if (generation !== this.#generation || this.#closed) {
        await listener.close(); // lost or closed while connecting
        return;
      }
      this.#listener = listener;
      // Listening first, then the head: a write committed in between is both read and heard.
      const { rows } = await listener.query<{ head: number }>('SELECT head FROM agent_revision WHERE id = 1');
      this.observe(rows[0]?.head ?? 0);
      if (generation !== this.#generation) return;
      this.#listening = true;
      this.#attempts = 0;
    } catch {
      this.#lost(generation);
    } finally {
      this.#connecting = false;
    }
  }

  /** Stops listening; the feed's reads go through the store, closed with it. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#generation++;
    clearTimeout(this.#retry);
    const listener = this.#listener;
    this.#listener = undefined;
    this.#listening = false;
    this.#releaseWaiters();
    await listener?.close();
  }

  /** The connection of attempt `generation` broke (or never came up): drop it and try again soon. */
  #lost(generation: number): void {
    if (generation !== this.#generation) return;
    this.#generation++;
    const listener = this.#listener;
    this.#listener = undefined;
    this.#listening = false;
    this.#releaseWaiters();
    void listener?.close();
    if (this.#closed) return;
    const delay = Math.min(RECONNECT_STEP_MS * ++this.#attempts, RECONNECT_MAX_MS);
    this.#retry = setTimeout(() => void this.listen(), delay);
    this.#retry.unref();
  }
}

function parseCursor(cursor: string): number {
  const n = Number(cursor);
  if (typeof cursor !== 'string' || cursor === '' || !Number.isSafeInteger(n) || n < 0) {
    throw validationError(
      'cursor',
      `is not a change-feed cursor of this store, got ${JSON.stringify(cursor)}`,
    );
  }
  return n;
}

function toChange<F extends StoredFlag>(row: ChangeRow): AgentChange<F> {
  const about = { id: row.id, project: row.project, name: row.name };
  if (row.deleted) return { type: 'deleted', ...about };
  return {
    type: 'written',
    ...about,
    activeVersion: row.active_version as number,
    latestVersion: row.latest_version as number,
    rollout: row.rollout === null ? null : (JSON.parse(row.rollout) as AgentRollout<F>),
  };
}
