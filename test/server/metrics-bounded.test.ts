import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { buildServer } from '../../src/server/app.ts';
import { json } from './support.ts';

const AGENTS = 2000;
const MAX_SERIES = 25;

/** Every sample of a family: labels (as written) → value. */
function family(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** The `agent` label of a sample's labels. */
const agentOf = (labels: string) => /agent="([^"]*)"/.exec(labels)?.[1] ?? '';

/** Σ over a family's samples of (now − before, 0 for a new one): what Prometheus' increase() adds up. */
function increase(
  before: Map<string, number>,
  now: Map<string, number>,
  filter: (labels: string) => boolean,
) {
  let sum = 0;
  for (const [labels, value] of now) if (filter(labels)) sum += value - (before.get(labels) ?? 0);
  return sum;
}

describe('/metrics with thousands of agents', () => {
  let pool: AgentPool;
  let app: FastifyInstance;
  const finished: RunRecord[] = [];
  const scrape = async () => {
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    return res.body;
  };
  const runAgent = async (i: number) => {
    const handle = await pool.runs.start('default', `agent-${i}`, { input: `question ${i}` });
    const record = await handle.result;
    assert.equal(record.status, 'succeeded');
    finished.push(record);
  };

  before(async () => {
    pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      // Cheap and exact: the demo model, priced so that runs cost something.
      prices: { prices: { 'demo/assistant': { inputPerMillion: 1e6 / 1024, outputPerMillion: 1e6 / 1024 } } },
      metrics: { maxAgentSeries: MAX_SERIES },
      pool: { maxActive: 100 },
    });
    app = await buildServer(pool);
    for (let i = 0; i < AGENTS; i++) await pool.agents.create('default', { name: `agent-${i}` });
  });
  after(async () => {
    await app.close();
    await pool.close();
  });

  it('keeps per-agent series bounded while totals stay exact, and the series add up to the totals scrape after scrape', async () => {
    const empty = await scrape();
    for (let i = 0; i < AGENTS; i++) await runAgent(i);
    const first = await scrape();

    const runs = family(first, 'agentpool_agent_runs_total');
    const agents = new Set([...runs.keys()].map(agentOf));
    assert.ok(agents.has('(other)'));
    assert.ok(agents.size <= MAX_SERIES + 1, `${agents.size} agents have series`);
    const agentLines = first
      .split('\n')
      .filter((l) => l.startsWith('agentpool_agent_') && !l.startsWith('#'));
    // Per agent: runs (one status here), tokens in and out, cost; and the gauge of series.
    assert.ok(agentLines.length <= 4 * (MAX_SERIES + 1) + 1, `${agentLines.length} per-agent samples`);
    assert.equal(family(first, 'agentpool_agent_series').get(''), MAX_SERIES);

    // The totals are exact.
    const tokensIn = finished.reduce((n, r) => n + r.inputTokens, 0);
    const cost = finished.reduce((n, r) => n + r.cost, 0);
    assert.equal(family(first, 'agentpool_runs_total').get('{status="succeeded"}'), AGENTS);
    assert.equal(family(first, 'agentpool_tokens_total').get('{direction="input"}'), tokensIn);
    assert.ok(Math.abs((family(first, 'agentpool_cost_usd_total').get('') ?? 0) - cost) < 1e-9);

    // From an empty start, the agent series add up to the totals.
    const all = () => true;
    assert.equal(increase(family(empty, 'agentpool_agent_runs_total'), runs, all), AGENTS);

    // A new pattern: a few agents turn busy and take series from the idle ones.
    for (let round = 0; round < 4; round++) for (let i = 0; i < 40; i++) await runAgent(AGENTS - 1 - i);
    const second = await scrape();
    const runs2 = family(second, 'agentpool_agent_runs_total');
    const agents2 = new Set([...runs2.keys()].map(agentOf));
    assert.ok(agents2.size <= MAX_SERIES + 1);
    assert.ok(agents2.has(`default/agent-${AGENTS - 1}`), 'a busy agent got a series');
    assert.equal(increase(runs, runs2, all), 160, 'each of the 160 runs counted once, none lost or doubled');
    const tokens2 = family(second, 'agentpool_agent_tokens_total');
    const tokensIn2 = finished.reduce((n, r) => n + r.inputTokens, 0);
    const input = (labels: string) => labels.includes('direction="input"');
    assert.equal(
      increase(family(first, 'agentpool_agent_tokens_total'), tokens2, input),
      tokensIn2 - tokensIn,
    );
  });

  it("keeps every agent's own figures available through the stats API", async () => {
    const res = await app.inject({ url: '/v1/pool/stats/agents?agent=agent-7' });
    const body = json<{ tracked: number; data: { name: string; runs: { succeeded: number } }[] }>(res);
    assert.equal(body.tracked, AGENTS);
    assert.deepEqual(
      body.data.map((a) => [a.name, a.runs.succeeded]),
      [['agent-7', 1]],
    );
  });
});
