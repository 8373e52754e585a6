/**
 * The body of the SQLite checkpointer's worker thread (see sqlite-checkpointer.ts): its own
 * connection to the store's file, looking at the WAL every `pollMs` and copying it into the
 * database there, so that no COMMIT of the request path pays for it. Checkpoints never lose a
 * commit: SQLite copies only frames already durable in the WAL, and a checkpoint cut short (the
 * thread stopped, the process killed) leaves the WAL to be copied again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointMode, CheckpointReport, CheckpointWorkerData } from './sqlite-checkpointer.ts';

interface WalState {
  busy: number;
  /** Frames in the WAL. */
  log: number;
  /** Of those, frames already copied into the database. */
  checkpointed: number;
}

const port = parentPort;
if (port === null) throw new Error('sqlite-checkpoint-worker.ts runs as a worker thread');
const { path, pages, idleMs, pollMs } = workerData as CheckpointWorkerData;

const db = new Database(path, { fileMustExist: true });
// The sync of a checkpoint follows the connection that runs it: NORMAL, as the writers use, syncs
// the WAL before copying and the database before the WAL may be reused, so a power loss cannot
// lose a checkpointed commit.
db.pragma('synchronous = NORMAL');
// Never wait for a lock: the next poll tries again, and a checkpoint waiting for the write lock
// (TRUNCATE) would hold up the writers on the request path.
db.pragma('busy_timeout = 0');
const look = db.prepare<[], WalState>('PRAGMA wal_checkpoint(NOOP)');
const passive = db.prepare<[], WalState>('PRAGMA wal_checkpoint(PASSIVE)');
const truncate = db.prepare<[], WalState>('PRAGMA wal_checkpoint(TRUNCATE)');

/** The WAL's length at the last poll, and since when it has not changed (ms). */
let lastLog = -1;
let quietSince = Date.now();

function checkpoint(mode: CheckpointMode): WalState {
  const started = performance.now();
  const state = (mode === 'passive' ? passive : truncate).get() as WalState;
  const report: CheckpointReport = {
    type: 'checkpoint',
    mode,
    busy: state.busy !== 0,
    log: state.log,
    checkpointed: state.checkpointed,
    durationMs: performance.now() - started,
  };
  port?.postMessage(report);
  return state;
}

function poll(): void {
  const now = Date.now();
  const wal = look.get() as WalState;
  if (wal.log !== lastLog) {
    lastLog = wal.log;
    quietSince = now;
  }
  if (wal.log - wal.checkpointed >= pages) {
    checkpoint('passive');
  } else if (wal.log > 0 && now - quietSince >= idleMs) {
    // Idle: copy the rest and give the WAL's disk space back. A reader or writer in the way makes
    // it busy; it is tried again after another quiet period.
    const state = checkpoint('truncate');
    lastLog = state.busy ? state.log : 0;
    quietSince = now;
  }
}

function stop(): void {
  clearInterval(timer);
  try {
    checkpoint('truncate'); // the last one; the writers have committed and stopped
  } finally {
    db.close();
    port?.close();
  }
}

const timer = setInterval(() => {
  try {
    poll();
  } catch (err) {
    // Reported, then the thread ends: SQLite's own checkpoints in COMMIT keep the WAL bounded.
    port.postMessage({ type: 'failed', message: String(err) } satisfies CheckpointReport);
    clearInterval(timer);
    db.close();
    port.close();
  }
}, pollMs);
port.on('message', stop);
