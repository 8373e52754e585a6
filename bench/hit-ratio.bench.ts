/**
 * Hit ratio of the eviction policies against the offline optimum on deterministic synthetic
 * traces. Drives the real policy classes exactly as the activation cache does (has → hit, else
 * add), so what is measured is what ships.
 *
 *   node bench/hit-ratio.bench.ts
 */
import { hashInt } from '../src/pool/policies/count-min-sketch.ts';
import { createPolicy } from '../src/pool/policies/create-policy.ts';
import type { PolicyName } from '../src/pool/policies/policy.ts';
import { table, writeResult } from './harness.ts';
import { loopTrace, recencyTrace, shiftingTrace, zipfCdf, zipfTrace } from './traces.ts';

/** The fraction of requests that hit, and the tinylfu state at the end for context. */
interface PolicyRun {
  hitRatio: number;
  seconds: number;
  final: Record<string, number | string>;
}

function simulate(name: PolicyName, capacity: number, trace: Int32Array): PolicyRun {
  const policy = createPolicy<number>(name, { capacity, hash: hashInt });
  const always = () => true;
  const start = performance.now();
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i]!;
    if (policy.has(key)) {
      policy.hit(key);
      hits++;
    } else {
      policy.add(key, always);
    }
  }
  return {
    hitRatio: hits / trace.length,
    seconds: (performance.now() - start) / 1000,
    final: policy.describe(),
  };
}

/**
 * Belady's MIN with bypass: the optimum for a cache that, like tinylfu, may refuse to admit.
 * On a miss with a full cache the key used furthest in the future leaves (or the newcomer is not
 * admitted when it is that key). A max-heap of next-use positions with lazy deletion finds it:
 * an entry is current only while its key is resident and still due at that position.
 */
function optimal(capacity: number, trace: Int32Array): number {
  const n = trace.length;
  let maxKey = 0;
  for (let i = 0; i < n; i++) maxKey = Math.max(maxKey, trace[i]!);
  const nextUse = new Int32Array(n);
  const seen = new Int32Array(maxKey + 1).fill(n);
  for (let i = n - 1; i >= 0; i--) {
    const key = trace[i]!;
    nextUse[i] = seen[key]!;
    seen[key] = i;
  }
  const resident = new Uint8Array(maxKey + 1);
  const due = new Int32Array(maxKey + 1);
  const heap = new Int32Array(n);
  let heapSize = 0;
  const push = (position: number) => {
    let i = heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! >= position) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = position;
  };
  const pop = () => {
    const last = heap[--heapSize]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= heapSize) break;
      if (child + 1 < heapSize && heap[child + 1]! > heap[child]!) child++;
      if (heap[child]! <= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  };
  const isCurrent = (position: number) => {
    const key = trace[position]!;
    return resident[key] === 1 && due[key] === position;
  };
  let size = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const key = trace[i]!;
    const next = nextUse[i]!;
    if (resident[key] === 1) {
      hits++;
      if (next === n) {
        // Never used again: leaving now is free and makes room.
        resident[key] = 0;
        size--;
      } else {
        due[key] = next;
        push(next);
      }
      continue;
    }
    if (next === n) continue;
    if (size === capacity) {
      while (!isCurrent(heap[0]!)) pop();
      const furthest = heap[0]!;
      if (furthest < next) continue;
      pop();
      resident[trace[furthest]!] = 0;
      size--;
    }
    resident[key] = 1;
    due[key] = next;
    size++;
    push(next);
  }
  return hits / n;
}

interface Row {
  capacity: number;
  lru: number;
  tinylfu: number;
  optimal: number;
  /** The best an online policy can expect on independent Zipf requests (keep the k most popular), when defined. */
  onlineBound: number | null;
  tinylfuWindow: number;
  seconds: { lru: number; tinylfu: number };
  targetMet: boolean | null;
}

interface TraceSpec {
  id: string;
  title: string;
  /** The target, or null for a trace reported for context only. */
  target: string | null;
  met: (row: Omit<Row, 'targetMet'>) => boolean | null;
  capacities: number[];
  trace: (capacity: number) => Int32Array;
  onlineBound: (capacity: number) => number | null;
}

const ZIPF_KEYS = 100_000;
const ZIPF_S = 0.9;
const zipf = zipfTrace({ keys: ZIPF_KEYS, s: ZIPF_S, requests: 2_000_000, seed: 0x5eed01 });
const shifting = shiftingTrace({ keys: ZIPF_KEYS, s: ZIPF_S, requests: 2_000_000, seed: 0x5eed02 });
const cdf = zipfCdf(ZIPF_KEYS, ZIPF_S);
const topK = (capacity: number) => cdf[capacity - 1]!;

const specs: TraceSpec[] = [
  {
    id: 'zipf',
    title: 'Zipf s = 0.9 over 100,000 agents, 2,000,000 requests',
    target: 'tinylfu ≥ lru + 5 points',
    met: (r) => r.tinylfu - r.lru >= 0.05,
    capacities: [100, 1_000, 10_000],
    trace: () => zipf,
    onlineBound: topK,
  },
  {
    id: 'loop',
    title: 'Loop over capacity × 1.1 agents, repeated (1,000,000 requests)',
    target: 'tinylfu ≥ lru + 50 points ("far above")',
    met: (r) => r.tinylfu - r.lru >= 0.5,
    capacities: [100, 1_000, 10_000],
    trace: (capacity) => {
      const keys = Math.round(capacity * 1.1);
      return loopTrace({ keys, requests: Math.max(1_000_000, 20 * keys) });
    },
    onlineBound: () => null,
  },
  {
    id: 'shifting',
    title:
      'Shifting Zipf s = 0.9: 100,000 agents, then 100,000 different agents half-way; 2,000,000 requests',
    target: 'tinylfu ≥ optimal − 5 points',
    met: (r) => r.optimal - r.tinylfu <= 0.05,
    capacities: [100, 1_000, 10_000],
    trace: () => shifting,
    onlineBound: topK,
  },
  {
    id: 'recency',
    title:
      'Recency-biased (context, no target): 20% new agents, otherwise one seen on average capacity / 2 new agents ago; 2,000,000 requests',
    target: null,
    met: () => null,
    capacities: [100, 1_000, 10_000],
    trace: (capacity) =>
      recencyTrace({ requests: 2_000_000, newShare: 0.2, meanDistance: capacity / 2, seed: 0x5eed03 }),
    onlineBound: () => null,
  },
];

const pct = (x: number) => (100 * x).toFixed(2);
const points = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;

const data: Record<string, Row[]> = {};
const sections: string[] = [
  'Each request: `has(k)` → `hit(k)` (a hit), otherwise `add(k)` (a miss); every key evictable; cold start ' +
    'included. Optimal is Belady’s MIN with bypass (evict, or do not admit, the key used furthest in the ' +
    'future). "top-k" is the expected hit ratio of keeping the k most popular keys, the most any online ' +
    'policy can expect on independent Zipf requests; the gap from it to optimal is the price of not knowing ' +
    'the future. Deltas are in percentage points. "window" is the tinylfu window size the hill climber ended at.',
];
for (const spec of specs) {
  const rows: Row[] = [];
  for (const capacity of spec.capacities) {
    const trace = spec.trace(capacity);
    const lru = simulate('lru', capacity, trace);
    const tinylfu = simulate('tinylfu', capacity, trace);
    const row = {
      capacity,
      lru: lru.hitRatio,
      tinylfu: tinylfu.hitRatio,
      optimal: optimal(capacity, trace),
      onlineBound: spec.onlineBound(capacity),
      tinylfuWindow: Number(tinylfu.final.maxWindow),
      seconds: { lru: lru.seconds, tinylfu: tinylfu.seconds },
    };
    rows.push({ ...row, targetMet: spec.met(row) });
    console.error(
      `${spec.id} capacity ${capacity}: lru ${pct(row.lru)}%, tinylfu ${pct(row.tinylfu)}%, optimal ${pct(row.optimal)}%`,
    );
  }
  data[spec.id] = rows;
  const verdict =
    spec.target === null
      ? 'No target: shows what the hill climber recovers where recency beats frequency.'
      : `Target: ${spec.target} — ${rows.every((r) => r.targetMet) ? '**met** at every capacity' : `**missed** at ${rows.filter((r) => !r.targetMet).length} of ${rows.length} capacities`}.`;
  sections.push(
    `### ${spec.title}\n\n${verdict}\n\n${table(
      [
        'capacity',
        'lru %',
        'tinylfu %',
        'optimal %',
        'top-k %',
        'tinylfu − lru',
        'optimal − tinylfu',
        'window',
        'target',
      ],
      rows.map((r) => [
        r.capacity.toLocaleString('en-US'),
        pct(r.lru),
        pct(r.tinylfu),
        pct(r.optimal),
        r.onlineBound === null ? '—' : pct(r.onlineBound),
        points(r.tinylfu - r.lru),
        points(r.optimal - r.tinylfu),
        r.tinylfuWindow,
        r.targetMet === null ? '—' : r.targetMet ? 'met' : 'missed',
      ]),
    )}`,
  );
}

writeResult({
  name: 'hit-ratio',
  title: 'Eviction: hit ratio of lru, tinylfu and the optimum',
  command: 'node bench/hit-ratio.bench.ts',
  summary: sections.join('\n\n'),
  data,
});
