/**
 * Runs the benchmarks, each in its own process (node --expose-gc), then rewrites BENCHMARKS.md
 * from every result in bench/results/. `node bench/run.ts [name …]` runs only the named ones;
 * `--report` only rewrites BENCHMARKS.md.
 *
 *   npm run bench                 all of them (about 19 minutes: the memory figure registers 1,000,000
 *                                 agents; run-overhead needs `npm ci --prefix bench/peers` first;
 *                                 cluster needs PostgreSQL and Redis on this machine)
 *   npm run bench -- acquire      one of them
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, RESULTS_DIR } from './harness.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** Every benchmark, in report order. */
const BENCHES = [
  'acquire',
  'run-overhead',
  'hit-ratio',
  'preload',
  'restart',
  'memory',
  'http',
  'resilience',
  'mcp',
  'metrics',
  'cluster',
] as const;

const args = process.argv.slice(2);
const reportOnly = args.includes('--report');
const selected = args.filter((a) => !a.startsWith('--'));
for (const name of selected) {
  if (!(BENCHES as readonly string[]).includes(name)) {
    console.error(`unknown benchmark ${JSON.stringify(name)}; known: ${BENCHES.join(', ')}`);
    process.exit(2);
  }
}

if (!reportOnly) {
  for (const name of selected.length > 0 ? selected : BENCHES) {
    console.log(`\n▶ ${name}`);
    const r = spawnSync(process.execPath, ['--expose-gc', join(BENCH_DIR, `${name}.bench.ts`)], {
      stdio: 'inherit',
    });
    if (r.status !== 0) {
      console.error(`benchmark ${name} failed (exit ${r.status ?? r.signal})`);
      process.exit(1);
    }
  }
}

const results = readdirSync(RESULTS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as BenchResult)
  .sort((a, b) => BENCHES.indexOf(a.name as never) - BENCHES.indexOf(b.name as never));

const sections = results.map((r) =>
  [
    `## ${r.title}`,
    '',
    `\`${r.command}\` — ${r.machine.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpu} (${r.machine.cores} cores, ${r.machine.memoryGiB} GiB), ${r.machine.platform}`,
    '',
    r.summary,
  ].join('\n'),
);
writeFileSync(
  join(BENCH_DIR, '..', 'BENCHMARKS.md'),
  `# Benchmarks\n\nProduced by \`npm run bench\` (bench/run.ts); raw results are in \`bench/results/*.json\`. Each figure names the command that reproduces it and the machine it ran on. Ratios compare against a baseline measured in the same run.\n\n${sections.join('\n\n')}\n`,
);
console.log(`\nBENCHMARKS.md rewritten from ${results.length} result(s)`);
