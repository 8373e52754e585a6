import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import { MODEL, runFixture, testTools } from '../support/run-fixture.ts';
import { tempDir } from '../support/temp-dir.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };
const TOOL_TS = join(import.meta.dirname, '../../src/tools/tool.ts');

interface Listed {
  name: string | null;
  source: string;
  ref: string;
  loaded: boolean;
  module?: { path: string; version: string | null };
  figures: { calls: number; errors: number; timeouts: number; durationMs: number };
}

describe('tool figures, GET /v1/tools and POST /v1/tools/reload', () => {
  const temp = tempDir();
  let f: Awaited<ReturnType<typeof runFixture>>;
  let app: FastifyInstance;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;
  let tick = 1_700_000_000;
  const writeModule = (answer: string) => {
    const path = join(temp.dir, 'shout.ts');
    writeFileSync(
      path,
      `import { defineTool } from ${JSON.stringify(TOOL_TS)};\n` +
        `export const shout = defineTool({ name: 'shout', description: 'Shouts.', ` +
        `inputSchema: { type: 'object', properties: { text: { type: 'string' } } }, ` +
        `execute: ({ text }) => String(text).toUpperCase() + ${JSON.stringify(answer)} });\n`,
    );
    tick += 10;
    utimesSync(path, tick, tick);
    return path;
  };

  before(async () => {
    writeModule('!');
    writeFileSync(join(temp.dir, 'unused.ts'), 'export {};\n');
    f = await runFixture({
      tools: { baseDir: temp.dir, tools: testTools().tools, defaultTimeoutMs: 50 },
    });
    app = await buildServer(f.pool, { adminKey: ADMIN });
    for (const id of ['alpha', 'beta']) await f.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await f.pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await f.pool.projects.createKey('beta')).key}` };
    await f.pool.agents.create('alpha', {
      name: 'worker',
      model: MODEL,
      tools: ['custom:add', 'custom:boom', 'custom:slow', 'module:./shout.ts'],
    });
    await f.pool.agents.create('beta', { name: 'idle', model: MODEL, tools: ['module:./unused.ts'] });
  });
  after(async () => {
    await app.close();
    await f.close();
    temp.cleanup();
  });

  const run = async (input: string) => {
    const handle = await f.pool.runs.start('alpha', 'worker', { input });
    const events: RunEvent[] = [];
    for await (const e of handle.stream.events()) events.push(e);
    return { run: await handle.result, events };
  };

  it("adds each call's duration, source and timeout to the run's events, and sums the step", async () => {
    f.fake.script(
      {
        toolCalls: [
          { name: 'add', arguments: { a: 1, b: 2 } },
          { name: 'boom', arguments: {} },
          { name: 'slow', arguments: {} },
          { name: 'shout', arguments: { text: 'hi' } },
        ],
      },
      { text: 'done' },
    );
    const { run: done, events } = await run('do everything');
    assert.equal(done.status, 'succeeded');
    const results = events
      .filter((e) => e.type === 'tool.result')
      .sort((x, y) => x.toolName.localeCompare(y.toolName)); // in the order they finished
    assert.deepEqual(
      results.map((e) => [e.toolName, e.ok, e.source, e.error?.code ?? null, e.timedOut ?? false]),
      [
        ['add', true, 'custom', null, false],
        ['boom', false, 'custom', 'TOOL_FAILED', false],
        ['shout', true, 'module', null, false],
        ['slow', false, 'custom', 'TOOL_TIMEOUT', true],
      ],
    );
    for (const r of results) assert.equal(typeof r.durationMs, 'number');
    assert.ok((results.find((r) => r.toolName === 'slow')?.durationMs ?? 0) >= 50);
    const [first, second] = events.filter((e) => e.type === 'step.finished');
    assert.ok(first?.type === 'step.finished' && second?.type === 'step.finished');
    assert.deepEqual({ ...first.tools, durationMs: 0 }, { calls: 4, errors: 2, timeouts: 1, durationMs: 0 });
    assert.ok((first.tools?.durationMs ?? 0) >= 50);
    assert.equal(second.tools, undefined, 'a step without tool calls has no summary');
  });

  it('exposes calls, errors, timeouts and latency per tool and source in /metrics', async () => {
    const res = await app.inject({ url: '/metrics', headers: admin });
    const body = res.body;
    assert.match(body, /^agentpool_tool_calls_total\{tool="add",source="custom"\} 1$/m);
    assert.match(body, /^agentpool_tool_calls_total\{tool="shout",source="module"\} 1$/m);
    assert.match(body, /^agentpool_tool_errors_total\{tool="boom",source="custom"\} 1$/m);
    assert.match(body, /^agentpool_tool_errors_total\{tool="slow",source="custom"\} 1$/m);
    assert.match(body, /^agentpool_tool_timeouts_total\{tool="slow",source="custom"\} 1$/m);
    assert.match(body, /^agentpool_tool_timeouts_total\{tool="add",source="custom"\} 0$/m);
    assert.match(body, /^agentpool_tool_call_duration_seconds_count\{tool="slow",source="custom"\} 1$/m);
    assert.match(
      body,
      /^agentpool_tool_call_duration_seconds_bucket\{le="0\.001",tool="add",source="custom"\} \d$/m,
    );
    assert.match(body, /^agentpool_tool_module_loads_total 1$/m);
    assert.match(body, /^agentpool_tool_module_versions 1$/m);
  });

  it('shows the figures in GET /v1/pool/stats: the whole pool for the admin, its own for a project key', async () => {
    const whole = json<{
      tools: {
        tools: { tool: string; calls: number; latencyMs: { p99: number } }[];
        sources: unknown[];
        modules: { loads: number };
      };
    }>(await app.inject({ url: '/v1/pool/stats', headers: admin }));
    assert.deepEqual(whole.tools.tools.map((t) => t.tool).sort(), ['add', 'boom', 'shout', 'slow']);
    assert.ok(whole.tools.tools.every((t) => t.calls === 1 && typeof t.latencyMs.p99 === 'number'));
    assert.deepEqual(whole.tools.sources, [
      {
        tool: '*',
        source: 'custom',
        calls: 3,
        errors: 2,
        timeouts: 1,
        durationMs: (whole.tools.sources[0] as { durationMs: number }).durationMs,
      },
      {
        tool: '*',
        source: 'module',
        calls: 1,
        errors: 0,
        timeouts: 0,
        durationMs: (whole.tools.sources[1] as { durationMs: number }).durationMs,
      },
    ]);
    assert.equal(whole.tools.modules.loads, 1);
    const own = json<{ tools: { tools: unknown[] } }>(
      await app.inject({ url: '/v1/pool/stats', headers: alpha }),
    );
    assert.equal(own.tools.tools.length, 4);
    const theirs = json<{ tools: { tools: unknown[]; sources: unknown[] } }>(
      await app.inject({ url: '/v1/pool/stats', headers: beta }),
    );
    assert.deepEqual(theirs.tools, { tools: [], sources: [] }, "alpha's calls are not beta's business");
  });

  it("lists what a project can use with its own figures: builtins, registered tools, its agents' modules", async () => {
    const res = await app.inject({ url: '/v1/tools', headers: alpha });
    assert.equal(res.statusCode, 200, res.body);
    const listing = json<{ project: string; data: Listed[]; truncated: boolean }>(res);
    assert.equal(listing.project, 'alpha');
    assert.equal(listing.truncated, false);
    const byRef = new Map(listing.data.map((t) => [t.ref, t]));
    assert.deepEqual(
      listing.data.map((t) => `${t.source}:${t.name}`),
      [
        'builtin:current_time',
        'builtin:calculator',
        'builtin:fetch_url',
        'custom:add',
        'custom:boom',
        'custom:slow',
        'module:shout',
      ],
    );
    assert.deepEqual(byRef.get('custom:slow')?.figures, {
      ...byRef.get('custom:slow')?.figures,
      calls: 1,
      errors: 1,
      timeouts: 1,
    });
    const shout = byRef.get('module:./shout.ts#shout');
    assert.equal(shout?.module?.path, join(temp.dir, 'shout.ts'));
    assert.match(shout?.module?.version ?? '', /^[0-9a-f]{16}$/);
    assert.equal(shout?.figures.calls, 1);

    const other = json<{ project: string; data: Listed[] }>(
      await app.inject({ url: '/v1/tools?project=beta', headers: admin }),
    );
    assert.equal(other.project, 'beta');
    const unused = other.data.find((t) => t.source === 'module');
    assert.deepEqual(
      { ...unused, figures: undefined },
      {
        name: null,
        description: null,
        source: 'module',
        ref: 'module:./unused.ts',
        inputSchema: null,
        module: { path: join(temp.dir, 'unused.ts'), version: null },
        loaded: false,
        figures: undefined,
      },
      'a module no activation loaded is listed by its reference, not imported',
    );
    assert.equal(other.data.find((t) => t.ref === 'custom:add')?.figures.calls, 0);

    const refused = await app.inject({ url: '/v1/tools?project=beta', headers: alpha });
    assert.equal(refused.statusCode, 403);
    assert.equal(json<{ error: { code: string } }>(refused).error.code, 'FORBIDDEN');
  });

  it('reloads a changed module on POST /v1/tools/reload (admin only), retiring the instance that used it', async () => {
    const forbidden = await app.inject({ method: 'POST', url: '/v1/tools/reload', headers: alpha });
    assert.equal(forbidden.statusCode, 403);
    assert.ok(f.pool.instances.instance('alpha', 'worker') !== undefined, 'the worker is live');
    const path = writeModule('!!!');
    const res = await app.inject({ method: 'POST', url: '/v1/tools/reload', headers: admin, payload: {} });
    assert.equal(res.statusCode, 200, res.body);
    const reload = json<{
      changed: { path: string }[];
      failed: unknown[];
      retired: number;
      modules: { reloads: number };
    }>(res);
    assert.deepEqual(
      reload.changed.map((c) => c.path),
      [path],
    );
    assert.deepEqual([reload.retired, reload.modules.reloads, reload.failed.length], [1, 1, 0]);
    assert.equal(
      f.pool.instances.instance('alpha', 'worker'),
      undefined,
      'retired: its next run activates it again',
    );
    f.fake.script({ toolCalls: [{ name: 'shout', arguments: { text: 'hey' } }] }, { text: 'ok' });
    const { events } = await run('shout');
    const result = events.find((e) => e.type === 'tool.result');
    assert.equal(result?.type === 'tool.result' && result.output, 'HEY!!!');

    const bare = await app.inject({ method: 'POST', url: '/v1/tools/reload', headers: admin });
    assert.equal(bare.statusCode, 200, 'the body is optional');
    const unchanged = json<{ changed: unknown[]; retired: number }>(
      await app.inject({
        method: 'POST',
        url: '/v1/tools/reload',
        headers: admin,
        payload: { path: 'shout.ts' },
      }),
    );
    assert.deepEqual([unchanged.changed, unchanged.retired], [[], 0]);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/tools/reload',
      headers: admin,
      payload: { path: '../etc.ts' },
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(json<{ error: { code: string } }>(bad).error.code, 'TOOL_NOT_FOUND');
  });
});
