/**
 * `GET /v1/pool/health`: the admin (and development mode) reads every check with its value and
 * thresholds; a project key reads the status and each check's name and status, no figures; the
 * report is the last check's, and the route is in the OpenAPI document.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import type { ProcessReading } from '../../src/pool/process-readings.ts';
import { buildServer } from '../../src/server/app.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const GiB = 2 ** 30;

interface Report {
  status: string;
  checkedAt: number | null;
  checks: Record<string, unknown>[];
  totals?: Record<string, number>;
}

describe('GET /v1/pool/health', () => {
  let pool: AgentPool | undefined;
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    await pool?.close();
    app = undefined;
    pool = undefined;
  });

  async function start(adminKey?: string) {
    const clock = new ManualClock();
    const reading: { current: ProcessReading } = {
      current: {
        eventLoopDelayMs: 300,
        eventLoopUtilization: 0.5,
        heapUsedBytes: GiB,
        heapLimitBytes: 4 * GiB,
        rssBytes: 2 * GiB,
        cpuRatio: 0.25,
      },
    };
    pool = await createAgentPool({
      store: 'memory',
      clock,
      ttlSweepIntervalMs: 0,
      pool: {
        health: { memoryLimitBytes: 8 * GiB, readings: { read: () => reading.current, close() {} } },
      },
    });
    app = await buildServer(pool, adminKey === undefined ? {} : { adminKey });
    return { clock, app, pool };
  }

  it("answers a check made at once before the timer's first, then the last check for the admin", async () => {
    const { clock, app: server } = await start(ADMIN);
    const headers = { authorization: `Bearer ${ADMIN}` };
    const before = await server.inject({ url: '/v1/pool/health', headers });
    assert.equal(before.statusCode, 200);
    const first = json<Report>(before);
    assert.equal(first.checkedAt, clock.now(), 'checked when asked');
    assert.equal(first.status, 'degraded', 'the readings then: event-loop delay 300 ms');
    assert.ok(first.checks.length > 0);

    clock.advance(10_000);
    const res = await server.inject({ url: '/v1/pool/health', headers });
    assert.equal(res.statusCode, 200);
    const report = json<Report>(res);
    assert.equal(report.status, 'degraded');
    assert.equal(report.checkedAt, clock.now());
    assert.deepEqual(report.checks, [
      {
        name: 'event_loop_delay',
        status: 'degraded',
        value: 300,
        unit: 'ms',
        threshold: { degraded: 200, overloaded: 1000 },
      },
      {
        name: 'event_loop_utilization',
        status: 'ok',
        value: 0.5,
        unit: 'ratio',
        threshold: { degraded: 0.9, overloaded: 0 },
      },
      {
        name: 'heap',
        status: 'ok',
        value: 0.25,
        unit: 'ratio',
        threshold: { degraded: 0.85, overloaded: 0.95 },
        bytes: GiB,
        limitBytes: 4 * GiB,
      },
      {
        name: 'rss',
        status: 'ok',
        value: 0.25,
        unit: 'ratio',
        threshold: { degraded: 0.85, overloaded: 0.95 },
        bytes: 2 * GiB,
        limitBytes: 8 * GiB,
      },
      { name: 'cpu', status: 'ok', value: 0.25, unit: 'ratio', threshold: { degraded: 0.9, overloaded: 0 } },
      {
        name: 'stuck_instances',
        status: 'ok',
        value: 0,
        unit: 'count',
        threshold: { degraded: 1, overloaded: 0 },
      },
    ]);
  });

  it('shows a project key the status and check statuses, no figures; needs a key once auth is on', async () => {
    const { clock, app: server, pool: p } = await start(ADMIN);
    await p.projects.create({ id: 'alpha' });
    const key = (await p.projects.createKey('alpha')).key;
    clock.advance(10_000);
    assert.equal((await server.inject({ url: '/v1/pool/health' })).statusCode, 401);
    const res = await server.inject({ url: '/v1/pool/health', headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.statusCode, 200);
    const report = json<Report>(res);
    assert.deepEqual(Object.keys(report).sort(), ['checkedAt', 'checks', 'status']);
    assert.equal(report.status, 'degraded');
    assert.deepEqual(report.checks[0], { name: 'event_loop_delay', status: 'degraded' });
    for (const c of report.checks) assert.deepEqual(Object.keys(c).sort(), ['name', 'status']);
  });

  it('is open to every request in development mode, with the figures', async () => {
    const { clock, app: server } = await start();
    clock.advance(10_000);
    const report = json<Report>(await server.inject({ url: '/v1/pool/health' }));
    assert.equal(report.checks[0]?.['value'], 300);
  });

  it('is in the OpenAPI document, its answer a PoolHealth component', async () => {
    const { app: server } = await start();
    const doc = json<{
      paths: Record<string, Record<string, { responses: Record<string, { content: unknown }> }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    }>(await server.inject({ url: '/openapi.json' }));
    const op = doc.paths['/v1/pool/health']?.['get'];
    assert.ok(op !== undefined);
    assert.match(JSON.stringify(op.responses['200']), /PoolHealth/);
    assert.deepEqual(Object.keys(doc.components.schemas['PoolHealth']?.properties ?? {}).sort(), [
      'checkedAt',
      'checks',
      'status',
      'totals',
    ]);
  });
});

describe("an agent's runTimeoutMs through the HTTP API", () => {
  let pool: AgentPool | undefined;
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    await pool?.close();
  });

  it('is written and read with the definition, and a bad value is refused naming the field', async () => {
    pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    app = await buildServer(pool);
    const created = await app.inject({
      method: 'POST',
      url: '/v1/agents',
      payload: { name: 'bounded', runTimeoutMs: 60_000 },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(json<{ spec: { runTimeoutMs: number } }>(created).spec.runTimeoutMs, 60_000);
    const bad = await app.inject({
      method: 'PATCH',
      url: '/v1/agents/bounded',
      payload: { runTimeoutMs: 10 },
    });
    assert.equal(bad.statusCode, 400);
    const error = json<{ error: { code: string; details: { field: string } } }>(bad).error;
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.equal(error.details.field, 'runTimeoutMs');
    const cleared = await app.inject({
      method: 'PATCH',
      url: '/v1/agents/bounded',
      payload: { runTimeoutMs: null },
    });
    assert.equal(cleared.statusCode, 200, cleared.body);
    const agent = json<{ agent: { spec: Record<string, unknown> }; changed: boolean }>(cleared);
    assert.equal(agent.changed, true);
    assert.equal(agent.agent.spec['runTimeoutMs'], undefined);
  });
});
