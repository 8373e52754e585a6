/**
 * A definition changed by another process on the same SQLite file is served by the pool's very
 * next run: first with two pools' worth of stores in this process (the other writer is a registry
 * on its own store, as `agentpool apply -f` opens it), then with real processes: `agentpool serve`
 * and `agentpool apply -f`. The model is the fake OpenAI-compatible server, so the instructions
 * that reach the provider show which version answered.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { systemClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { cli, freePort, spawnCli } from '../support/cli-process.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'default';
const MODEL = 'openai-compatible/fake-model';

/** The system prompt of the fake provider's latest request. */
function lastInstructions(fake: FakeOpenAI): unknown {
  return fake.requests.at(-1)?.messages.find((m) => m.role === 'system')?.content;
}

describe('a definition changed by another process on the same SQLite file', () => {
  let fake: FakeOpenAI;
  let tmp: ReturnType<typeof tempDir>;
  let pool: AgentPool;
  let other: { registry: AgentRegistry; store: SqliteAgentStore };

  before(async () => {
    fake = await startFakeOpenAI();
  });
  after(() => fake.close());
  beforeEach(async () => {
    tmp = tempDir();
    pool = await createAgentPool({
      dataDir: tmp.dir,
      ttlSweepIntervalMs: 0,
      models: { providers: { 'openai-compatible': { baseURL: fake.url } }, env: {} },
    });
    const store = new SqliteAgentStore({ path: join(tmp.dir, 'agentpool.db') });
    other = {
      store,
      registry: new AgentRegistry({ store, bus: new LocalEventBus<AgentEvent>(), clock: systemClock }),
    };
  });
  afterEach(async () => {
    await other.store.close();
    await pool.close();
    tmp.cleanup();
  });

  const run = async (agent = 'support') => (await pool.runs.start(P, agent, { input: 'hi' })).result;

  it("serves the other process's new version from the next run, retiring the warm instance", async () => {
    await pool.agents.create(P, { name: 'support', model: MODEL, instructions: 'You are version one.' });
    const first = await run();
    assert.equal(first.agentVersion, 1);
    assert.equal(lastInstructions(fake), 'You are version one.');
    assert.equal(pool.instances.instance(P, 'support')?.version, 1, 'warm on version 1');

    const { result } = await other.registry.apply(P, {
      name: 'support',
      model: MODEL,
      instructions: 'You are version two.',
    });
    assert.equal(result, 'updated');

    const next = await run();
    assert.equal(next.status, 'succeeded');
    assert.equal(next.agentVersion, 2);
    assert.equal(lastInstructions(fake), 'You are version two.');
    assert.equal(pool.instances.instance(P, 'support')?.version, 2);
  });

  it('follows a rollback and a rollout started elsewhere', async () => {
    await pool.agents.create(P, { name: 'support', model: MODEL, instructions: 'one' });
    await pool.agents.update(P, 'support', { instructions: 'two' });
    assert.equal((await run()).agentVersion, 2);

    await other.registry.rollback(P, 'support', 1);
    assert.equal((await run()).agentVersion, 1);
    assert.equal(lastInstructions(fake), 'one');

    await other.registry.update(P, 'support', { instructions: 'three', rollout: { strategy: 'all' } });
    const canary = await run();
    assert.equal(canary.agentVersion, 3, 'every run goes to the candidate');
    assert.equal(lastInstructions(fake), 'three');
  });

  it('stops serving an agent deleted elsewhere', async () => {
    await pool.agents.create(P, { name: 'support', model: MODEL });
    assert.equal((await run()).status, 'succeeded');
    await other.registry.delete(P, 'support');
    await assert.rejects(run(), (err: unknown) => isAgentPoolError(err, 'AGENT_NOT_FOUND'));
    assert.equal(pool.instances.instance(P, 'support'), undefined);
  });

  it('keeps a hot agent warm: it is prewarmed again on the new version', async () => {
    await pool.agents.create(P, { name: 'hot', model: MODEL, tier: 'hot', instructions: 'one' });
    await pool.prewarmHot();
    await other.registry.update(P, 'hot', { instructions: 'two' });
    assert.equal((await run('hot')).agentVersion, 2);
    assert.equal(pool.instances.instance(P, 'hot')?.pinned, true);
  });
});

describe('agentpool apply -f next to a running agentpool serve', () => {
  let fake: FakeOpenAI;
  const tmp = tempDir();
  const file = join(tmp.dir, 'agents.yaml');
  const dataDir = join(tmp.dir, 'data');
  let url = '';
  let server: ReturnType<typeof spawnCli> | undefined;

  const agentsFile = (instructions: string, tools = '[builtin:calculator]') =>
    writeFileSync(
      file,
      `agents:\n  - name: support\n    model: ${MODEL}\n    instructions: ${instructions}\n    tools: ${tools}\n`,
    );
  const httpRun = async () => {
    const res = await fetch(`${url}/v1/agents/support/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi' }),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as { status: string; agentVersion: number };
  };

  before(async () => {
    fake = await startFakeOpenAI();
    agentsFile('You are version one.');
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawnCli(['serve', '--port', String(port), '--data-dir', dataDir, '--agents-file', file], {
      AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: fake.url,
    });
    for (let i = 0; i < 400; i++) {
      if (server.process.exitCode !== null) break;
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`the server never answered:\n${server.stdout()}${server.stderr()}`);
  });
  after(async () => {
    if (server !== undefined && server.process.exitCode === null) {
      server.process.kill('SIGTERM');
      await server.exited;
    }
    await fake.close();
    tmp.cleanup();
  });

  it("the server's next run reports the applied version and sends its instructions", async () => {
    const first = await httpRun();
    assert.equal(first.agentVersion, 1);
    assert.equal(lastInstructions(fake), 'You are version one.');

    agentsFile('You are version two.');
    const applied = await cli(['apply', '-f', file, '--data-dir', dataDir], {});
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(applied.stdout, 'updated    default/support  v2\n');

    const next = await httpRun();
    assert.equal(next.status, 'succeeded');
    assert.equal(next.agentVersion, 2);
    assert.equal(lastInstructions(fake), 'You are version two.');
  });

  it('refuses an unknown tool with exit 1, naming the entry and field, and applies nothing', async () => {
    agentsFile('You are version three.', '[builtin:nosuch]');
    const refused = await cli(['apply', '-f', file, '--data-dir', dataDir], {});
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /agents\[0\] \("support"\): tools\[0\] names no builtin tool "nosuch" \(builtin tools: .*\(nothing was applied\)/,
    );
    assert.equal((await httpRun()).agentVersion, 2);
  });
});
