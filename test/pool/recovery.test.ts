import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { APICallError, type LanguageModelV3, type LanguageModelV3CallOptions } from '@ai-sdk/provider';
import { type AgentPool, type AgentPoolOptions, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { DemoLanguageModel } from '../../src/models/demo-model.ts';
import type { InstanceEvent } from '../../src/pool/pool.ts';
import { isAgentRunFailure, isRequestRefused } from '../../src/pool/recovery-failures.ts';
import { resolveRecoveryOptions } from '../../src/pool/recovery-options.ts';
import type { RecoveryEvent } from '../../src/pool/recovery.ts';
import { buildServer } from '../../src/server/app.ts';
import { resolveServerConfig } from '../../src/cli/config.ts';

const P = 'default';
const FIXTURES = join(import.meta.dirname, '../tools/fixtures');
const WINDOW = 600_000;
const COOLDOWN = 60_000;

/**
 * A model (`flaky/<id>`) that answers like the demo model while `mode.status` is 0, and otherwise
 * fails every call as a provider answering that HTTP status would.
 */
function flakyModel() {
  const mode = { status: 0 };
  const demo = new DemoLanguageModel('flaky');
  const fail = (): never => {
    throw new APICallError({
      message: `provider says ${mode.status}`,
      url: 'http://provider.test/v1/chat/completions',
      requestBodyValues: {},
      statusCode: mode.status,
      isRetryable: mode.status >= 500,
    });
  };
  const model: LanguageModelV3 = {
    specificationVersion: 'v3',
    provider: 'flaky',
    modelId: 'flaky',
    supportedUrls: {},
    doGenerate: async (options: LanguageModelV3CallOptions) =>
      mode.status === 0 ? demo.doGenerate(options) : fail(),
    doStream: async (options: LanguageModelV3CallOptions) =>
      mode.status === 0 ? demo.doStream(options) : fail(),
  };
  return { model, mode };
}

async function fixture(options: AgentPoolOptions = {}) {
  const clock = new ManualClock();
  const flaky = flakyModel();
  const pool = await createAgentPool({
    store: 'memory',
    clock,
    ttlSweepIntervalMs: 0,
    models: { custom: { flaky: () => flaky.model } },
    tools: { baseDir: FIXTURES },
    resilience: { retry: { maxAttempts: 1 }, breaker: { threshold: 100 } },
    pool: { recovery: { maxFailuresPerHour: 3, windowMs: WINDOW, cooldownMs: COOLDOWN } },
    ...options,
  });
  const steps: RecoveryEvent[] = [];
  const transitions: InstanceEvent[] = [];
  pool.events.on('instance.recovery', (e) => steps.push(e));
  pool.events.on('instance.state_changed', (e) => transitions.push(e));
  /** Runs `agent` once, waits for its recovery step if any, and returns the run's record. */
  const run = async (agent: string) => {
    const record = await (await pool.runs.start(P, agent, { input: 'hi' })).result;
    await pool.recovery.settled();
    return record;
  };
  return { pool, clock, flaky, steps, transitions, run };
}

let pool: AgentPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('failure recovery: which failures count', () => {
  it('counts runs that failed for the agent’s own reasons, not refusals, cancels or provider outages', () => {
    const run = (code: string, message = '', status = 'failed', startedAt: number | null = 1) => ({
      status,
      startedAt,
      error: { code, message },
    });
    for (const code of [
      'TOOL_FAILED',
      'TOOL_TIMEOUT',
      'TOOL_NOT_FOUND',
      'TOOL_INPUT_INVALID',
      'MAX_STEPS_REACHED',
    ])
      assert.equal(isAgentRunFailure(run(code)), true, code);
    assert.equal(
      isAgentRunFailure(run('MODEL_CALL_FAILED', 'the call to x failed with HTTP 400: bad')),
      true,
    );
    for (const code of [
      'QUOTA_EXCEEDED',
      'BUDGET_EXHAUSTED',
      'RATE_LIMITED',
      'THREAD_BUSY',
      'VALIDATION_FAILED',
      'MODEL_UNAVAILABLE',
      'MODEL_BUSY',
      'MODEL_TIMEOUT',
      'STORE_FAILED',
      'LEASE_LOST',
    ])
      assert.equal(isAgentRunFailure(run(code)), false, code);
    assert.equal(
      isAgentRunFailure(run('MODEL_CALL_FAILED', 'the call to x failed with HTTP 503: down')),
      false,
    );
    assert.equal(isAgentRunFailure(run('MODEL_CALL_FAILED', 'the call to x failed: fetch failed')), false);
    assert.equal(isAgentRunFailure(run('RUN_CANCELLED', '', 'cancelled')), false);
    assert.equal(isAgentRunFailure(run('RUN_INTERRUPTED', '', 'interrupted')), false);
    // never started on an instance: a refusal, or an activation failure counted by the pool
    assert.equal(isAgentRunFailure(run('TOOL_NOT_FOUND', '', 'failed', null)), false);
    assert.equal(isRequestRefused('failed with HTTP 429: slow down'), false);
    assert.equal(isRequestRefused('failed with HTTP 408: timeout'), false);
    assert.equal(isRequestRefused('failed with HTTP 422: schema'), true);
  });

  it('leaves provider outages to the breaker: 5xx and breaker-open failures take no step', async () => {
    const f = await fixture({ resilience: { retry: { maxAttempts: 1 }, breaker: { threshold: 2 } } });
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
    f.flaky.mode.status = 500;
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) codes.push((await f.run('a')).error?.code);
    assert.ok(codes.includes('MODEL_CALL_FAILED') && codes.includes('MODEL_UNAVAILABLE'), codes.join());
    assert.equal(f.steps.length, 0);
    assert.equal(
      f.pool.recovery.info({ id: (await f.pool.agents.get(P, 'a')).id, project: P, name: 'a' }).failures,
      0,
    );
    assert.deepEqual(f.pool.recovery.stats().failures, { activation: 0, run: 0 });
  });

  it('does not count a cancelled run', async () => {
    const f = await fixture();
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
    for (let i = 0; i < 4; i++) {
      const controller = new AbortController();
      controller.abort();
      const handle = await f.pool.runs.start(P, 'a', { input: 'hi', signal: controller.signal });
      assert.equal((await handle.result).status, 'cancelled');
    }
    await f.pool.recovery.settled();
    assert.equal(f.steps.length, 0);
  });
});

describe('failure recovery: escalation', () => {
  it('takes restart → recover → migrate → escalate, one step per failure from the threshold on', async () => {
    const f = await fixture();
    pool = f.pool;
    const agent = await f.pool.agents.create(P, { name: 'a', model: 'flaky/x', tier: 'warm' });
    assert.equal((await f.run('a')).status, 'succeeded');
    const first = f.pool.instances.instance(P, 'a');
    f.flaky.mode.status = 400;
    await f.run('a');
    await f.run('a');
    assert.equal(f.steps.length, 0, 'under the threshold: nothing');
    f.transitions.length = 0;
    await f.run('a'); // the third failure within the window: restart
    assert.deepEqual(
      f.steps.map((s) => s.step),
      ['restart'],
    );
    assert.equal(f.steps[0]?.outcome, 'restarted');
    assert.equal(f.steps[0]?.cause?.code, 'MODEL_CALL_FAILED');
    // restarted in place, through error → initializing, and serving again
    const restarted = f.pool.instances.instance(P, 'a');
    assert.equal(restarted?.instanceId, first?.instanceId);
    assert.equal(restarted?.state, 'ready');
    const moves = f.transitions
      .filter((t) => t.instanceId === first?.instanceId)
      .map((t) => `${t.from}>${t.to}:${t.reason}`);
    assert.deepEqual(moves.slice(-3), [
      'ready>error:failed',
      'error>initializing:restart',
      'initializing>ready:activated',
    ]);

    await f.run('a');
    assert.equal(f.steps.at(-1)?.step, 'recover');
    await f.run('a');
    assert.equal(f.steps.at(-1)?.step, 'migrate');
    assert.equal(f.steps.at(-1)?.tier, 'cold');
    assert.equal(f.pool.recovery.migratedTier(agent.id), 'cold');
    await f.run('a');
    const escalated = f.steps.at(-1);
    assert.equal(escalated?.step, 'escalate');
    assert.equal(escalated?.until, f.clock.now() + COOLDOWN);
    assert.deepEqual(
      f.steps.map((s) => s.step),
      ['restart', 'recover', 'migrate', 'escalate'],
    );
    assert.equal(f.pool.instances.instance(P, 'a'), undefined, 'a degraded agent holds no slot');
    await assert.rejects(f.pool.runs.start(P, 'a', { input: 'hi' }), (e) =>
      isAgentPoolError(e, 'AGENT_DEGRADED'),
    );
    const info = f.pool.recovery.info(agent);
    assert.equal(info.status, 'degraded');
    assert.deepEqual(
      info.history.map((h) => h.step),
      ['restart', 'recover', 'migrate', 'escalate'],
    );
    assert.deepEqual(f.pool.recovery.stats().steps, { restart: 1, recover: 1, migrate: 1, escalate: 1 });
    assert.match(
      await f.pool.metrics.registry.metrics(),
      /agentpool_recovery_steps_total\{strategy="escalate"\} 1/,
    );
    assert.match(await f.pool.metrics.registry.metrics(), /agentpool_agents_degraded 1/);
  });

  it('migrates a hot agent down one tier at a time: hot → warm → cold, unpinned', async () => {
    const f = await fixture();
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'h', model: 'flaky/x', tier: 'hot' });
    f.flaky.mode.status = 400;
    for (let i = 0; i < 5; i++) await f.run('h');
    assert.deepEqual(
      f.steps.map((s) => [s.step, s.tier]),
      [
        ['restart', undefined],
        ['recover', undefined],
        ['migrate', 'warm'],
      ],
    );
    f.flaky.mode.status = 0;
    const warm = await f.pool.instances.prewarm(P, 'h');
    assert.equal(warm.tier, 'warm');
    assert.equal(warm.pinned, false);
    f.flaky.mode.status = 400;
    await f.run('h');
    assert.deepEqual(
      f.steps.map((s) => s.step),
      ['restart', 'recover', 'migrate', 'migrate', 'escalate'].slice(0, 4),
    );
    assert.equal(f.steps.at(-1)?.tier, 'cold');
    await f.run('h');
    assert.equal(f.steps.at(-1)?.step, 'escalate');
  });

  it('counts failed activations, and recovers by loading the tool module again', async () => {
    const f = await fixture();
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'broken', model: 'flaky/x', tools: ['module:./named.ts#missing'] });
    for (let i = 0; i < 4; i++) assert.equal((await f.run('broken')).error?.code, 'TOOL_NOT_FOUND');
    assert.deepEqual(
      f.steps.map((s) => [s.step, s.outcome]),
      [
        ['restart', 'none'],
        ['recover', undefined],
      ],
    );
    assert.equal(f.steps[0]?.cause?.code, 'TOOL_NOT_FOUND');
    assert.deepEqual(f.pool.recovery.stats().failures, { activation: 4, run: 0 });
  });
});

describe('failure recovery: time', () => {
  it('forgets failures that left the window', async () => {
    const f = await fixture();
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
    f.flaky.mode.status = 400;
    await f.run('a');
    await f.run('a');
    f.clock.advance(WINDOW + 1);
    await f.run('a');
    assert.equal(f.steps.length, 0, 'the first two are out of the window');
    await f.run('a');
    f.clock.advance(WINDOW / 2);
    await f.run('a');
    assert.deepEqual(
      f.steps.map((s) => s.step),
      ['restart'],
    );
  });

  it('serves a degraded agent again once the cooldown passed, and degrades it again at its next failure', async () => {
    const f = await fixture({
      pool: {
        recovery: { maxFailuresPerHour: 1, windowMs: WINDOW, cooldownMs: COOLDOWN, sweepIntervalMs: 10_000 },
      },
    });
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'c', model: 'flaky/x', tier: 'cold' });
    f.flaky.mode.status = 400;
    for (let i = 0; i < 3; i++) await f.run('c');
    assert.deepEqual(
      f.steps.map((s) => s.step),
      ['restart', 'recover', 'escalate'],
    );
    f.clock.advance(COOLDOWN - 1);
    await assert.rejects(
      f.pool.runs.start(P, 'c', { input: 'hi' }),
      (e) => isAgentPoolError(e, 'AGENT_DEGRADED') && e.details.retryAfterSeconds === 1,
    );
    f.clock.advance(10_000); // the cooldown passed and the sweep ran
    assert.equal(f.steps.at(-1)?.step, 'cooldown_ended');
    f.flaky.mode.status = 0;
    assert.equal((await f.run('c')).status, 'succeeded');
    f.flaky.mode.status = 400;
    await f.run('c');
    assert.equal(f.steps.at(-1)?.step, 'escalate', 'still failing within the window: degraded again at once');
  });

  it('brings a migrated agent back to its tier once its failures left the window', async () => {
    const f = await fixture();
    pool = f.pool;
    const agent = await f.pool.agents.create(P, { name: 'a', model: 'flaky/x', tier: 'warm' });
    f.flaky.mode.status = 400;
    for (let i = 0; i < 5; i++) await f.run('a');
    assert.equal(f.pool.recovery.migratedTier(agent.id), 'cold');
    f.clock.advance(WINDOW + 60_000);
    assert.equal(f.steps.at(-1)?.step, 'restored');
    assert.equal(f.pool.recovery.migratedTier(agent.id), undefined);
    assert.equal(f.pool.recovery.info(agent).status, 'ok');
  });
});

describe('failure recovery: a cluster', () => {
  it('takes the degraded mark and its reset from another node', async () => {
    const f = await fixture();
    pool = f.pool;
    const agent = await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
    const told = {
      type: 'instance.recovery',
      project: P,
      agentId: agent.id,
      name: 'a',
      failures: 6,
    } as const;
    f.pool.recovery.applyShared({
      ...told,
      step: 'escalate',
      at: f.clock.now(),
      cause: null,
      until: null,
      node: 'other',
    });
    await assert.rejects(f.pool.runs.start(P, 'a', { input: 'hi' }), (e) =>
      isAgentPoolError(e, 'AGENT_DEGRADED'),
    );
    f.pool.recovery.applyShared({ ...told, step: 'reset', at: f.clock.now(), cause: null, node: 'other' });
    assert.equal((await f.run('a')).status, 'succeeded');
    // its own steps, relayed back to it, change nothing
    f.pool.recovery.applyShared({
      ...told,
      step: 'escalate',
      at: f.clock.now(),
      cause: null,
      until: null,
      node: f.pool.cluster.nodeId,
    });
    assert.equal((await f.run('a')).status, 'succeeded');
  });
});

describe('failure recovery over HTTP', () => {
  it('answers 503 AGENT_DEGRADED with Retry-After, shows the record, and resets the agent', async () => {
    const f = await fixture();
    pool = f.pool;
    const app = await buildServer(f.pool);
    try {
      await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
      f.flaky.mode.status = 400;
      for (let i = 0; i < 6; i++) await f.run('a');
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/agents/a/runs',
        payload: { input: 'hi' },
      });
      assert.equal(refused.statusCode, 503);
      assert.equal(refused.headers['retry-after'], String(COOLDOWN / 1000));
      assert.equal(JSON.parse(refused.body).error.code, 'AGENT_DEGRADED');

      const record = await app.inject({ method: 'GET', url: '/v1/pool/instances/a/recovery' });
      assert.equal(record.statusCode, 200);
      assert.equal(JSON.parse(record.body).status, 'degraded');
      const listed = JSON.parse(
        (await app.inject({ method: 'GET', url: '/v1/pool/recovery?status=degraded' })).body,
      );
      assert.deepEqual(
        listed.data.map((r: { name: string }) => r.name),
        ['a'],
      );

      const reset = await app.inject({ method: 'POST', url: '/v1/pool/instances/a/reset' });
      assert.equal(reset.statusCode, 200);
      const body = JSON.parse(reset.body);
      assert.equal(body.status, 'ok');
      assert.equal(body.failures, 0);
      assert.equal(body.history.at(-1).step, 'reset');
      assert.equal(f.steps.at(-1)?.step, 'reset');

      f.flaky.mode.status = 0;
      const served = await app.inject({ method: 'POST', url: '/v1/agents/a/runs', payload: { input: 'hi' } });
      assert.equal(JSON.parse(served.body).status, 'succeeded');
      // the other actions of the instance route still answer
      assert.equal((await app.inject({ method: 'POST', url: '/v1/pool/instances/a/pause' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });

  it("lets a project key reset its own project's agents only", async () => {
    const f = await fixture();
    pool = f.pool;
    await f.pool.projects.create({ id: 'acme' });
    await f.pool.projects.create({ id: 'other' });
    await f.pool.agents.create('acme', { name: 'mine', model: 'flaky/x' });
    await f.pool.agents.create('other', { name: 'theirs', model: 'flaky/x' });
    const { key } = await f.pool.projects.createKey('acme');
    const app = await buildServer(f.pool, { adminKey: 'admin-secret-0123456789' });
    try {
      const as = (token: string, url: string) =>
        app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` } });
      assert.equal((await as(key, '/v1/pool/instances/mine/reset')).statusCode, 200);
      const denied = await as(key, '/v1/pool/instances/theirs/reset');
      assert.equal(denied.statusCode, 404);
      assert.equal(JSON.parse(denied.body).error.code, 'AGENT_NOT_FOUND');
      const admin = await app.inject({
        method: 'POST',
        url: '/v1/pool/instances/theirs/reset',
        headers: { authorization: 'Bearer admin-secret-0123456789', 'agentpool-project': 'other' },
      });
      assert.equal(admin.statusCode, 200);
    } finally {
      await app.close();
    }
  });
});

describe('failure recovery options', () => {
  it('has documented defaults', () => {
    assert.deepEqual(resolveRecoveryOptions(), {
      enabled: true,
      maxFailuresPerHour: 5,
      windowMs: 3_600_000,
      cooldownMs: 900_000,
      historySize: 20,
      maxTrackedAgents: 10_000,
      sweepIntervalMs: 60_000,
    });
  });

  it('names the field of a bad value', () => {
    assert.throws(
      () => resolveRecoveryOptions({ maxFailuresPerHour: 0 }),
      /pool\.recovery\.maxFailuresPerHour must be an integer from 1 to 10000, got 0/,
    );
    assert.throws(() => resolveRecoveryOptions({ windowMs: 'x' as never }), /pool\.recovery\.windowMs/);
    assert.throws(
      () => resolveRecoveryOptions({ nope: 1 } as never),
      /pool\.recovery\.nope is not a known field/,
    );
  });

  it('is set from the config file under pool.recovery, a bad value named with its file', () => {
    const path = '/etc/agentpool/agentpool.yaml';
    const config = resolveServerConfig({
      file: { path, values: { pool: { recovery: { maxFailuresPerHour: 3, cooldownMs: 0 } } } },
    });
    assert.deepEqual(config.pool, { recovery: { maxFailuresPerHour: 3, cooldownMs: 0 } });
    assert.throws(
      () => resolveServerConfig({ file: { path, values: { pool: { recovery: { windowMs: 5 } } } } }),
      /pool\.recovery\.windowMs in config file \/etc\/agentpool\/agentpool\.yaml must be/,
    );
  });

  it('takes no step when disabled', async () => {
    const f = await fixture({ pool: { recovery: { enabled: false, maxFailuresPerHour: 1 } } });
    pool = f.pool;
    await f.pool.agents.create(P, { name: 'a', model: 'flaky/x' });
    f.flaky.mode.status = 400;
    for (let i = 0; i < 4; i++) await f.run('a');
    assert.equal(f.steps.length, 0);
  });
});
