/**
 * The SQLite run store's commits against another checkout of itself (the tree before a change),
 * both in this one process, in alternating batches, so machine load hits both alike: what a
 * run on a new thread writes, store calls only, one at a time. Each iteration awaits
 * createThread, then createRun of a finished run with its input and answer (two messages), each a
 * commit of its own; a tool run's shape adds commitStep with two more. Reports median, mean, p99
 * and p99.9 µs per iteration, and WAL frames per iteration (a quiet file, no checkpoint).
 *
 *   node --expose-gc bench/sqlite-commit-ab.bench.ts ../agentpool-base [iterations per tree] [exclusive]
 *
 * With `exclusive`, this tree's store is on a database with `lockingMode: 'exclusive'`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type * as RunsModule from '../src/store/sqlite-runs.ts';
import type * as ConnectionModule from '../src/store/sqlite-connection.ts';
import type { NewMessage, RunRecord } from '../src/store/ports.ts';
import { summarize, quantile } from './harness.ts';

const HERE = resolve(fileURLToPath(import.meta.url), '../..');
const other = process.argv[2];
if (other === undefined) {
  console.error('usage: node --expose-gc bench/sqlite-commit-ab.bench.ts <other checkout> [iterations]');
  process.exit(2);
}
const ITERATIONS = Number(process.argv[3] ?? 20_000);
const EXCLUSIVE = process.argv[4] === 'exclusive';
const BATCH = 500;

const run = (id: string, threadId: string, now: number, steps: number): RunRecord => ({
  id,
  project: 'bench',
  agentId: 'agt_0000000000000000',
  agentName: 'plain',
  agentVersion: 1,
  threadId,
  status: steps === 1 ? 'succeeded' : 'running',
  input: 'Reply with the word ok and nothing else.',
  output: steps === 1 ? 'ok' : null,
  model: 'mock/instant',
  steps: 1,
  inputTokens: 12,
  outputTokens: 1,
  cost: 0,
  error: null,
  metadata: {},
  createdAt: now,
  startedAt: now,
  finishedAt: steps === 1 ? now : null,
});
const message = (id: string, runId: string, now: number, role: NewMessage['role']): NewMessage => ({
  id,
  role,
  content: role === 'user' ? 'Reply with the word ok and nothing else.' : [{ type: 'text', text: 'ok' }],
  runId,
  createdAt: now,
});

/** A store of one tree on a file of its own, and one iteration of each shape on it. */
async function contender(root: string, exclusive = false) {
  const { SqliteRunStore } = (await import(join(root, 'src/store/sqlite-runs.ts'))) as typeof RunsModule;
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-commit-ab-'));
  const path = join(dir, 'agentpool.db');
  const database = exclusive
    ? (
        (await import(join(root, 'src/store/sqlite-connection.ts'))) as typeof ConnectionModule
      ).SqliteDatabase.open(path, { lockingMode: 'exclusive' })
    : undefined;
  const store = database === undefined ? new SqliteRunStore({ path }) : new SqliteRunStore({ database });
  database?.release();
  let n = 0;
  const iteration = async (shape: 'plain' | 'tool') => {
    const now = Date.now();
    const i = (n++).toString(36).padStart(8, '0');
    const thread = await store.createThread({
      id: `thr_${now}${i}`,
      project: 'bench',
      metadata: {},
      ttlSeconds: null,
      now,
    });
    const record = run(`run_${now}${i}`, thread.id, now, shape === 'plain' ? 1 : 2);
    await store.createRun(record, [
      message(`msg_${i}a`, record.id, now, 'user'),
      message(`msg_${i}b`, record.id, now, 'assistant'),
    ]);
    if (shape === 'tool') {
      const done = { ...record, status: 'succeeded' as const, output: 'ok', steps: 2, finishedAt: now };
      await store.commitStep(done, [
        message(`msg_${i}c`, record.id, now, 'tool'),
        message(`msg_${i}d`, record.id, now, 'assistant'),
      ]);
    }
  };
  /** WAL frames one iteration appends, read on a connection of the bench's own. */
  const frames = async (shape: 'plain' | 'tool') => {
    // The store's own connection when exclusive: no other may open the file.
    const db = database?.db ?? new Database(path);
    const log = () => (db.prepare('PRAGMA wal_checkpoint(NOOP)').get() as { log: number }).log;
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
      const before = log();
      // Few enough that no checkpoint starts the WAL over meanwhile.
      for (let k = 0; k < 40; k++) await iteration(shape);
      return (log() - before) / 40;
    } finally {
      if (database === undefined) db.close();
    }
  };
  return {
    iteration,
    frames,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const trees = { other: await contender(resolve(other)), this: await contender(HERE, EXCLUSIVE) };
const shapes = ['plain', 'tool'] as const;
const frames = {
  other: { plain: await trees.other.frames('plain'), tool: await trees.other.frames('tool') },
  this: { plain: await trees.this.frames('plain'), tool: await trees.this.frames('tool') },
};
const times = {
  other: { plain: [] as number[], tool: [] as number[] },
  this: { plain: [] as number[], tool: [] as number[] },
};
for (const t of Object.values(trees))
  for (let k = 0; k < 2000; k++) await t.iteration(k % 2 ? 'plain' : 'tool');
for (let round = 0; round < ITERATIONS / BATCH; round++) {
  const order = round % 2 === 0 ? (['other', 'this'] as const) : (['this', 'other'] as const);
  for (const name of order) {
    for (const shape of shapes) {
      for (let k = 0; k < BATCH; k++) {
        const started = performance.now();
        await trees[name].iteration(shape);
        times[name][shape].push((performance.now() - started) * 1000);
      }
    }
  }
}
await trees.other.close();
await trees.this.close();
console.log(`${ITERATIONS} iterations per tree and shape, µs per iteration; WAL frames per iteration`);
console.log('| shape | stat | other tree | this tree | this / other |');
console.log('| --- | --- | --- | --- | --- |');
for (const shape of shapes) {
  const a = summarize(times.other[shape]);
  const b = summarize(times.this[shape]);
  const p999 = (xs: number[]) =>
    quantile(
      [...xs].sort((x, y) => x - y),
      0.999,
    );
  const rows: [string, number, number][] = [
    ['median', a.median, b.median],
    ['mean', a.mean, b.mean],
    ['p99', a.p99, b.p99],
    ['p99.9', p999(times.other[shape]), p999(times.this[shape])],
    ['WAL frames', frames.other[shape], frames.this[shape]],
  ];
  for (const [stat, x, y] of rows) {
    console.log(`| ${shape} | ${stat} | ${x.toFixed(1)} | ${y.toFixed(1)} | ${(y / x).toFixed(3)} |`);
  }
}
