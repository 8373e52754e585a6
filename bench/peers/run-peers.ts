/**
 * Self-check and measure the peers of the per-run overhead benchmark, and print the table.
 *
 *   npm ci --prefix bench/peers                      (once)
 *   node --expose-gc bench/peers/run-peers.ts        every peer, each in its own process
 *   node --expose-gc bench/peers/run-peers.ts --in-process           all in this process
 *   node --expose-gc bench/peers/run-peers.ts --only floor,ai-sdk     some of them
 *   node --expose-gc bench/peers/run-peers.ts --rounds 3             median of 3 rounds per figure
 *   node --expose-gc bench/peers/run-peers.ts --json /tmp/peers.json  also write the figures
 *
 * Each peer is measured in a fresh child process by default, so no contender runs on JIT
 * feedback, caches or heap state left behind by another (several of them share zod, web streams
 * and promise-heavy code). A network guard (diagnostics_channel) fails the run if anything opens
 * a socket or starts an HTTP/fetch request.
 */
import { spawnSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type ContenderCost, combineRounds, measureContender, measurePerRun } from './measure.ts';
import { PEERS, SCRIPT, checkPeers, peerVersions } from './peers.ts';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

// --- network guard: nothing here may touch the network ---------------------------------------
const netEvents: string[] = [];
for (const channel of ['net.client.socket', 'http.client.request.start', 'undici:request:create']) {
  dc.subscribe(channel, () => netEvents.push(channel));
}
function assertNoNetwork(): void {
  if (netEvents.length > 0) throw new Error(`network activity during the benchmark: ${netEvents.join(', ')}`);
}

if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
  console.error('run with: node --expose-gc bench/peers/run-peers.ts');
  process.exit(2);
}

const childKey = flag('--child');
if (childKey !== undefined) {
  // child: measure one peer, print its figures as JSON on the last line
  const entry = PEERS.find((p) => p.key === childKey);
  if (!entry) throw new Error(`unknown peer ${childKey}`);
  const cost = await measureContender(await entry.factory());
  assertNoNetwork();
  console.log(JSON.stringify(cost));
  process.exit(0);
}

const only = flag('--only')?.split(',');
const selected = only ? PEERS.filter((p) => only.includes(p.key)) : PEERS;
if (only && selected.length !== only.length) {
  console.error(`unknown peer in --only; known: ${PEERS.map((p) => p.key).join(', ')}`);
  process.exit(2);
}

console.log('versions:', JSON.stringify(await peerVersions()));
console.log(`node ${process.version}, ${cpus()[0]?.model ?? '?'} × ${cpus().length}`);

const checked = await checkPeers();
assertNoNetwork();
console.log(`self-check passed: ${checked.join(', ')}`);
console.log(
  `  A: 1 model call → ${JSON.stringify(SCRIPT.plainText)}; B: 2 model calls, add(2, 3) run once → ${JSON.stringify(SCRIPT.finalText)}; usage reported`,
);

// what the harness itself costs per run: an empty async function
const harness = await measurePerRun(async () => undefined, { warmup: 5000, iterations: 50_000 });

const rounds = Math.max(1, Number(flag('--rounds') ?? 1));
const byPeer = new Map<string, ContenderCost[]>();
for (let round = 1; round <= rounds; round++) {
  for (const { key, factory } of selected) {
    const t0 = performance.now();
    const cost = args.includes('--in-process')
      ? await measureContender(await factory())
      : measureInChild(key);
    byPeer.set(key, [...(byPeer.get(key) ?? []), cost]);
    const r = rounds > 1 ? ` (round ${round}/${rounds})` : '';
    console.log(`measured ${cost.name}${r} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}
assertNoNetwork();
const results = selected.map(({ key }) => combineRounds(byPeer.get(key) ?? []));

function measureInChild(key: string): ContenderCost {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', key], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`measuring ${key} failed (exit ${r.status ?? r.signal})`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as ContenderCost;
}

const us = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const kib = (b: number) => (b / 1024).toFixed(b >= 10 * 1024 ? 0 : 1);
const header = [
  'peer',
  'A median µs',
  'A p99 µs',
  'A heap KiB/run',
  'B median µs',
  'B p99 µs',
  'B heap KiB/run',
  'runs warm-up+timed A / B',
];
const rows = results.map((r) => [
  r.name,
  us(r.plain.medianUs),
  us(r.plain.p99Us),
  kib(r.plain.heapBytesPerRun),
  us(r.toolCall.medianUs),
  us(r.toolCall.p99Us),
  kib(r.toolCall.heapBytesPerRun),
  `${r.plain.warmup.runs}+${r.plain.iterations} / ${r.toolCall.warmup.runs}+${r.toolCall.iterations}`,
]);
const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
console.log(`\n${[line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')}\n`);
console.log(
  `A: one model call returning text. B: model call → add tool → model call → text. Instant in-process mock model; runs sequential; heap = bytes allocated on the V8 heap per run (garbage included).`,
);
console.log(
  `harness floor (empty async fn): median ${us(harness.medianUs)} µs, ${harness.heapBytesPerRun.toFixed(0)} B/run`,
);
for (const r of results) {
  for (const [scenario, c] of [
    ['A', r.plain],
    ['B', r.toolCall],
  ] as const) {
    if (!c.warmup.settled) {
      console.log(`note: ${r.name} ${scenario} was still speeding up when its warm-up time ran out`);
    }
    if (c.retainedBytesPerRun > 4096) {
      console.log(`note: ${r.name} ${scenario} retains ${kib(c.retainedBytesPerRun)} KiB per run`);
    }
  }
}

const jsonPath = flag('--json');
if (jsonPath) {
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ versions: await peerVersions(), harness, rounds: Object.fromEntries(byPeer), results }, null, 2)}\n`,
  );
  console.log(`wrote ${jsonPath}`);
}
