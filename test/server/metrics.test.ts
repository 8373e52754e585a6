import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/** The value of one sample line, e.g. `agentpool_runs_total{agent="default/support",status="succeeded"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture();
    await f.pool.agents.create('default', { name: 'support', tools: ['builtin:calculator'] });
  });
  afterEach(() => f.close());

  const scrape = async () => {
    const res = await f.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
    return res.body;
  };
  const run = (payload: Record<string, unknown>) =>
    f.app.inject({ method: 'POST', url: '/v1/agents/support/runs', payload });

  it('counts runs, model calls, tokens, activations and instances', async () => {
    const before = await scrape();
    assert.equal(sample(before, 'agentpool_activations_total'), 0);
    assert.equal((await run({ input: 'what is 17*23' })).statusCode, 200);
    await run({ input: 'hello' });
    const text = await scrape();
    assert.equal(sample(text, 'agentpool_runs_total{status="succeeded"}'), 2);
    assert.equal(sample(text, 'agentpool_agent_runs_total{agent="default/support",status="succeeded"}'), 2);
    assert.equal(
      sample(text, 'agentpool_model_call_duration_seconds_count{model="demo/assistant",outcome="ok"}'),
      3,
    );
    const input = sample(text, 'agentpool_tokens_total{direction="input"}') ?? 0;
    assert.ok(input > 0);
    assert.equal(
      sample(text, 'agentpool_agent_tokens_total{agent="default/support",direction="input"}'),
      input,
    );
    assert.equal(sample(text, 'agentpool_activations_total'), 1);
    assert.equal(sample(text, 'agentpool_cache_misses_total'), 1);
    assert.equal(sample(text, 'agentpool_instances{state="ready"}'), 1);
    assert.equal(sample(text, 'agentpool_instances_by_tier{tier="auto"}'), 1);
    assert.equal(sample(text, 'agentpool_activation_duration_seconds_count'), 1);
    assert.equal(sample(text, 'agentpool_acquire_wait_seconds_count'), 0, 'nobody had to wait');
    assert.equal(sample(text, 'agentpool_activation_duration_seconds_bucket{le="+Inf"}'), 1);
    assert.equal(sample(text, 'agentpool_run_duration_seconds_count{status="succeeded"}'), 2);
    assert.equal(sample(text, 'agentpool_runs_in_flight{state="running"}'), 0);
  });

  it('counts thread-busy refusals and runs in flight', async () => {
    await f.pool.agents.create('default', { name: 'slowpoke', model: 'slow/x' });
    const thread = await f.pool.threads.create('default');
    const first = await f.pool.runs.start('default', 'slowpoke', { input: 'hi', threadId: thread.id });
    await f.slow.started;
    assert.equal(sample(await scrape(), 'agentpool_runs_in_flight{state="running"}'), 1);
    const refused = await f.app.inject({
      method: 'POST',
      url: '/v1/agents/slowpoke/runs',
      payload: { input: 'me too', threadId: thread.id },
    });
    assert.equal(refused.statusCode, 409);
    f.slow.release();
    await first.result;
    assert.equal(sample(await scrape(), 'agentpool_thread_busy_rejections_total'), 1);
  });

  it('reads the pool stats once per scrape, and fresh ones at the next scrape', async () => {
    const instances = f.pool.instances;
    const stats = instances.stats.bind(instances);
    let reads = 0;
    instances.stats = () => {
      reads++;
      return stats();
    };
    await scrape();
    assert.equal(reads, 1);
    await run({ input: 'hello' });
    const body = await scrape();
    assert.equal(reads, 2);
    assert.match(body, /agentpool_activations_total 1/);
  });

  it('keeps two pools in one process apart', async () => {
    const other = await serverFixture();
    try {
      await run({ input: 'hello' });
      const mine = await scrape();
      const theirs = (await other.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.equal(sample(mine, 'agentpool_activations_total'), 1);
      assert.equal(sample(theirs, 'agentpool_activations_total'), 0);
    } finally {
      await other.close();
    }
  });
});
