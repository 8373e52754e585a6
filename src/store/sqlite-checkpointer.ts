/**
 * WAL checkpoints off the request path. In WAL mode every commit appends its pages to the WAL,
 * and a checkpoint copies them into the database file. SQLite runs it inside the COMMIT that makes
 * the WAL reach `wal_autocheckpoint` pages: that commit then costs milliseconds instead of tens of
 * microseconds, the mean and p99 of a run several times its median. The checkpointer runs
 * PASSIVE checkpoints on a worker thread with its own connection, which copies frames while the
 * writer goes on, once the WAL holds `pages` pages not yet copied; when no commit came for
 * `idleMs`, a TRUNCATE checkpoint gives the WAL's disk space back.
 *
 * The writer keeps SQLite's own checkpoint at a higher mark (openDatabase) as a bound: when
 * writes never pause, the writer cannot start the WAL over (it may only once every frame is
 * copied) and that checkpoint copies what the worker has not, a small rest.
 *
 * The cost moves, it does not vanish: commits made while the thread copies are slower. Runs one at
 * a time with a zero-latency model (copying a quarter of the time) measured mean −5 to −13 %,
 * p99.9 −75 %, p99 +10 to +30 % (docs/operations.md, "The SQLite file").
 */
import diagnostics from 'node:diagnostics_channel';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { intOption, objectOption } from '../core/options.ts';

/** Options of the checkpointer of a SQLite run store. */
export interface SqliteCheckpointOptions {
  /**
   * Checkpoint (PASSIVE) once the WAL holds this many pages not yet copied into the database.
   * @default 1000
   */
  readonly pages?: number | undefined;
  /**
   * Checkpoint everything and truncate the WAL to zero bytes after this long without a commit, ms.
   * @default 1000
   */
  readonly idleMs?: number | undefined;
  /**
   * How often the worker looks at the WAL, ms (a look costs a few microseconds, on its thread).
   * @default 10
   */
  readonly pollMs?: number | undefined;
}

/** {@link SqliteCheckpointOptions} with every default applied. */
export type ResolvedSqliteCheckpointOptions = Required<{
  [K in keyof SqliteCheckpointOptions]: NonNullable<SqliteCheckpointOptions[K]>;
}>;

/** Applies the defaults of {@link SqliteCheckpointOptions}; VALIDATION_FAILED names a bad field. */
export function resolveSqliteCheckpointOptions(
  options: SqliteCheckpointOptions | undefined,
  field = 'checkpoint',
): ResolvedSqliteCheckpointOptions {
  const o = objectOption(field, options, ['pages', 'idleMs', 'pollMs']) as SqliteCheckpointOptions;
  return {
    pages: intOption(`${field}.pages`, o.pages, 1000, 1, 1_000_000),
    idleMs: intOption(`${field}.idleMs`, o.idleMs, 1000, 1, 3_600_000),
    pollMs: intOption(`${field}.pollMs`, o.pollMs, 10, 1, 60_000),
  };
}

/** What the worker thread is started with. @internal */
export interface CheckpointWorkerData extends ResolvedSqliteCheckpointOptions {
  readonly path: string;
}

/** PASSIVE when the WAL is long, TRUNCATE when idle or stopping. */
export type CheckpointMode = 'passive' | 'truncate';

/**
 * What the worker reports: a checkpoint it ran (PASSIVE on a long WAL, TRUNCATE when idle or
 * stopping) with the WAL's state after it, or the failure that ended it.
 */
export type CheckpointReport =
  | {
      readonly type: 'checkpoint';
      readonly mode: CheckpointMode;
      /** Another connection was in the way, so not every frame could be copied (or truncated). */
      readonly busy: boolean;
      /** Frames in the WAL after the checkpoint (0 once truncated). */
      readonly log: number;
      /** Of those, frames copied into the database. */
      readonly checkpointed: number;
      readonly durationMs: number;
    }
  | { readonly type: 'failed'; readonly message: string };

/** What {@link SQLITE_CHECKPOINT_CHANNEL} publishes: a worker's report and the file it is about. */
export type SqliteCheckpointMessage = CheckpointReport & { readonly path: string };

/**
 * The `node:diagnostics_channel` name each checkpoint of a checkpointer, and a failure that
 * stopped one, is published on. After a failure the writers' own checkpoints keep the WAL bounded.
 */
export const SQLITE_CHECKPOINT_CHANNEL = 'agentpool:sqlite:checkpoint';
const reports = diagnostics.channel(SQLITE_CHECKPOINT_CHANNEL);

/** The worker's module, next to this one: `.ts` when run from source, `.js` once built. */
const WORKER = new URL(
  `./sqlite-checkpoint-worker${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/** A worker thread checkpointing one SQLite file in WAL mode until {@link close}. */
export class SqliteCheckpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;

  constructor(path: string, options: ResolvedSqliteCheckpointOptions) {
    const data: CheckpointWorkerData = { path, ...options };
    this.#worker = new Worker(WORKER, { workerData: data });
    // A store nobody closed must not keep the process alive; close() holds it until the end.
    this.#worker.unref();
    const publish = (report: CheckpointReport) => {
      if (reports.hasSubscribers) reports.publish({ ...report, path } satisfies SqliteCheckpointMessage);
    };
    this.#worker.on('message', publish);
    this.#worker.on('error', (err) => publish({ type: 'failed', message: String(err) }));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
  }

  /** Runs a last checkpoint and ends the thread; resolves once it has ended. */
  async close(): Promise<void> {
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
