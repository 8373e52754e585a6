/**
 * The small benchmark harness: timing helpers, percentiles, machine description, and writing a
 * result as JSON (bench/results/<name>.json) that bench/run.ts summarises into BENCHMARKS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** What a result was measured on. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

/** The q-quantile (0..1) of a sorted array of numbers. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Median, p99 and mean of samples (any unit). */
export function summarize(samples: number[]): { median: number; p99: number; mean: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length);
  return { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), mean, n: sorted.length };
}

/**
 * Runs `fn` in batches of `batch` calls and returns nanoseconds per call for each batch, after
 * `warmup` batches. Batching keeps timer resolution out of sub-microsecond figures.
 */
export async function timeBatches(
  fn: () => unknown | Promise<unknown>,
  opts: { batches: number; batch: number; warmup?: number },
): Promise<number[]> {
  const out: number[] = [];
  const warmup = opts.warmup ?? Math.ceil(opts.batches / 10);
  for (let b = 0; b < warmup + opts.batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < opts.batch; i++) await fn();
    const ns = Number(process.hrtime.bigint() - start) / opts.batch;
    if (b >= warmup) out.push(ns);
  }
  return out;
}

/** Median and p99 µs of `runs` calls of `fn` one at a time, after 200 warm-up calls. */
export async function sequentialUs(
  fn: () => Promise<unknown>,
  runs: number,
): Promise<{ median: number; p99: number }> {
  for (let i = 0; i < 200; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const s = summarize(samples);
  return { median: s.median, p99: s.p99 };
}

/**
 * Wall-clock µs per call with `concurrency` calls of `fn` in flight: batches for 0.5 s of warm-up,
 * then for 2 s, the time divided by the calls.
 */
export async function concurrentUs(fn: () => Promise<unknown>, concurrency: number): Promise<number> {
  const batch = () => Promise.all(Array.from({ length: concurrency }, fn));
  for (const end = performance.now() + 500; performance.now() < end;) await batch();
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) {
    await batch();
    runs += concurrency;
  }
  return ((performance.now() - start) * 1000) / runs;
}

/** A benchmark's result file. `summary` is Markdown placed in BENCHMARKS.md under `title`. */
export interface BenchResult {
  name: string;
  title: string;
  command: string;
  machine: MachineInfo;
  summary: string;
  data: unknown;
}

/** Writes bench/results/<name>.json and prints the summary. */
export function writeResult(result: Omit<BenchResult, 'machine'>): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const full: BenchResult = { ...result, machine: machineInfo() };
  writeFileSync(join(RESULTS_DIR, `${result.name}.json`), `${JSON.stringify(full, null, 2)}\n`);
  console.log(`\n## ${result.title}\n\n${result.summary}\n`);
}

/** A Markdown table from a header row and data rows. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
