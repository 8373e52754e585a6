import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { AgentPoolEvent } from '../../src/agent-pool.ts';
import { createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { DIAGNOSTICS_CHANNELS, HOOK_NAMES, type HookEvents, type RunHooks } from '../../src/tools/hooks.ts';
import { MODEL, P, runFixture, testTools } from '../support/run-fixture.ts';
import { tempDir } from '../support/temp-dir.ts';
import { hookLog } from './fixtures/hook-log.ts';

type Fixture = Awaited<ReturnType<typeof runFixture>>;
type Seen = { [K in keyof HookEvents]: [K, HookEvents[K]] }[keyof HookEvents];

const HOOK_LOG = join(import.meta.dirname, 'fixtures/hook-log.ts');

/** Hooks that record every call, in order. */
function recording(): { seen: Seen[]; hooks: RunHooks } {
  const seen: Seen[] = [];
  const hooks: RunHooks = {};
  for (const name of HOOK_NAMES) {
    (hooks as Record<string, (e: unknown) => void>)[name] = (event) => seen.push([name, event] as Seen);
  }
  return { seen, hooks };
}

describe('run hooks', () => {
  let f: Fixture;
  const recorded = recording();
  const temp = tempDir();
  let failures: AgentPoolEvent[] = [];
  let throwing: 'no' | 'throw' | 'reject' = 'no';
  const lines: Record<string, unknown>[] = [];

  const writeHooks = (label: string) =>
    writeFileSync(
      join(temp.dir, 'hooks.ts'),
      `import { hookLog } from ${JSON.stringify(HOOK_LOG)};\n` +
        `export function before(e: { step: number }) { hookLog.push('${label}:before:' + e.step); }\n` +
        `export const finished = (e: { run: { status: string } }) => { hookLog.push('${label}:finished:' + e.run.status); };\n` +
        `export const notAFunction = 42;\n`,
    );

  before(async () => {
    writeHooks('v1');
    f = await runFixture({
      logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
      tools: { baseDir: temp.dir, tools: testTools().tools },
      hooks: {
        ...recorded.hooks,
        beforeModelCall: (event) => {
          recorded.hooks.beforeModelCall?.(event);
          hookLog.push(`pool:before:${event.step}`);
          if (throwing === 'throw') throw new Error('the hook broke');
        },
        afterToolCall: (event) => {
          recorded.hooks.afterToolCall?.(event);
          return throwing === 'reject' ? Promise.reject(new Error('the async hook broke')) : undefined;
        },
      },
    });
    f.pool.events.on('hook.failed', (e) => failures.push(e));
    await f.pool.agents.create(P, { name: 'tooled', model: MODEL, tools: ['custom:add'] });
    await f.pool.agents.create(P, {
      name: 'hooked',
      model: MODEL,
      hooks: { beforeModelCall: 'module:./hooks.ts#before', onRunFinished: 'module:hooks.ts#finished' },
    });
  });
  after(async () => {
    await f.close();
    temp.cleanup();
  });
  beforeEach(() => {
    recorded.seen.length = 0;
    hookLog.length = 0;
    failures = [];
    lines.length = 0;
    throwing = 'no';
  });

  it('calls each hook with its event, in the order the run meets them', async () => {
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] }, { text: 'Five.' });
    const run = await (await f.pool.runs.start(P, 'tooled', { input: 'add 2 and 3' })).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(
      recorded.seen.map(([name, e]) => `${name}:${'step' in e ? e.step : '-'}`),
      [
        'beforeModelCall:1',
        'afterModelCall:1',
        'beforeToolCall:1',
        'afterToolCall:1',
        'beforeModelCall:2',
        'afterModelCall:2',
        'onRunFinished:-',
      ],
    );
    const ids = { project: P, agent: 'tooled', runId: run.id, threadId: null };
    const [, start] = recorded.seen[0]!;
    assert.deepEqual(start, { ...ids, step: 1, model: MODEL });
    const [, end] = recorded.seen[1]! as ['afterModelCall', HookEvents['afterModelCall']];
    assert.deepEqual(
      { ...end, durationMs: 0, inputTokens: 0, outputTokens: 0 },
      {
        ...ids,
        step: 1,
        model: MODEL,
        ok: true,
        durationMs: 0,
        finishReason: 'tool-calls',
        inputTokens: 0,
        outputTokens: 0,
        toolCalls: 1,
      },
    );
    assert.ok(end.durationMs > 0 && end.inputTokens > 0);
    const [, toolStart] = recorded.seen[2]! as ['beforeToolCall', HookEvents['beforeToolCall']];
    assert.deepEqual(
      { ...toolStart, toolCallId: 'x' },
      {
        ...ids,
        step: 1,
        toolCallId: 'x',
        toolName: 'add',
        source: 'custom',
        input: { a: 2, b: 3 },
      },
    );
    const [, toolEnd] = recorded.seen[3]! as ['afterToolCall', HookEvents['afterToolCall']];
    assert.deepEqual(
      [toolEnd.ok, toolEnd.output, toolEnd.timedOut, toolEnd.toolCallId],
      [true, { sum: 5 }, false, toolStart.toolCallId],
    );
    assert.equal(typeof toolEnd.durationMs, 'number');
    const [, finished] = recorded.seen[6]! as ['onRunFinished', HookEvents['onRunFinished']];
    assert.deepEqual(finished, { ...ids, run });
  });

  it('tells afterModelCall and onRunFinished of a failed model call', async () => {
    f.fake.script({ status: 400, body: { error: { message: 'bad request' } } });
    const run = await (await f.pool.runs.start(P, 'tooled', { input: 'hi' })).result;
    assert.equal(run.status, 'failed');
    const names = recorded.seen.map(([name]) => name);
    assert.deepEqual(names, ['beforeModelCall', 'afterModelCall', 'onRunFinished']);
    const [, end] = recorded.seen[1]! as ['afterModelCall', HookEvents['afterModelCall']];
    assert.deepEqual([end.ok, end.error?.code, end.finishReason], [false, run.error?.code, null]);
    const [, finished] = recorded.seen[2]! as ['onRunFinished', HookEvents['onRunFinished']];
    assert.equal(finished.run.status, 'failed');
  });

  it('reports a hook that throws or rejects, and the run goes on', async () => {
    throwing = 'throw';
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: 'Two.' });
    const first = await (await f.pool.runs.start(P, 'tooled', { input: 'add' })).result;
    assert.equal(first.status, 'succeeded');
    assert.equal(first.output, 'Two.');
    throwing = 'reject';
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }, { text: 'Three.' });
    const second = await (await f.pool.runs.start(P, 'tooled', { input: 'add' })).result;
    assert.equal(second.status, 'succeeded');
    await new Promise((resolve) => setImmediate(resolve)); // the rejection is reported when it settles
    assert.deepEqual(
      failures.map((e) => e.type === 'hook.failed' && [e.hook, e.origin, e.runId, e.error.message]),
      [
        ['beforeModelCall', 'pool', first.id, 'the hook broke'],
        ['beforeModelCall', 'pool', first.id, 'the hook broke'],
        ['afterToolCall', 'pool', second.id, 'the async hook broke'],
      ],
    );
    const logged = lines.filter((l) => l['msg'] === 'hook beforeModelCall failed');
    assert.equal(logged.length, 2);
    assert.deepEqual(
      [logged[0]?.['level'], logged[0]?.['component'], logged[0]?.['origin'], logged[0]?.['runId']],
      [40, 'tools', 'pool', first.id],
    );
    const { body } = await f.pool.metrics.scrape();
    assert.match(body, /^agentpool_hook_errors_total\{hook="beforeModelCall"\} 2$/m);
    assert.match(body, /^agentpool_hook_errors_total\{hook="afterToolCall"\} 1$/m);
  });

  it("resolves an agent's module hooks once per instance, after the pool's, until a reload retires it", async () => {
    f.fake.script({ text: 'one' }, { text: 'two' }, { text: 'three' });
    assert.equal((await (await f.pool.runs.start(P, 'hooked', { input: '1' })).result).status, 'succeeded');
    assert.deepEqual(hookLog, ['pool:before:1', 'v1:before:1', 'v1:finished:succeeded']);
    writeHooks('v2');
    await (
      await f.pool.runs.start(P, 'hooked', { input: '2' })
    ).result;
    assert.deepEqual(
      hookLog.slice(3),
      ['pool:before:1', 'v1:before:1', 'v1:finished:succeeded'],
      'the live instance keeps its hooks',
    );
    const reload = await f.pool.reloadTools();
    assert.deepEqual(
      reload.changed.map((c) => c.path),
      [join(temp.dir, 'hooks.ts')],
    );
    assert.equal(reload.retired, 1);
    await (
      await f.pool.runs.start(P, 'hooked', { input: '3' })
    ).result;
    assert.deepEqual(hookLog.slice(6), ['pool:before:1', 'v2:before:1', 'v2:finished:succeeded']);
  });

  it("checks an agent's hook references: a missing file when written, a missing export at activation", async () => {
    await assert.rejects(
      f.pool.agents.create(P, {
        name: 'nohook',
        model: MODEL,
        hooks: { afterToolCall: 'module:./missing.ts#x' },
      }),
      (err) =>
        isAgentPoolError(err) &&
        err.code === 'VALIDATION_FAILED' &&
        err.details['field'] === 'hooks.afterToolCall',
    );
    await assert.rejects(
      f.pool.agents.create(P, { name: 'badref', model: MODEL, hooks: { afterToolCall: './hooks.ts' } }),
      (err) =>
        isAgentPoolError(err) &&
        err.details['field'] === 'hooks.afterToolCall' &&
        /module:<path>#<export>/.test(err.message),
    );
    await f.pool.agents.create(P, {
      name: 'notfn',
      model: MODEL,
      hooks: { onRunFinished: 'module:./hooks.ts#notAFunction' },
    });
    const run = await (await f.pool.runs.start(P, 'notfn', { input: 'hi' })).result;
    assert.deepEqual([run.status, run.error?.code], ['failed', 'HOOK_NOT_FOUND']);
    assert.deepEqual(
      recorded.seen.map(([name, e]) => [name, 'run' in e ? e.run.id : null]),
      [['onRunFinished', run.id]],
      "a run that never reached a model still tells the pool's onRunFinished",
    );
    await assert.rejects(
      f.pool.instances.acquire(P, 'notfn'),
      (err) =>
        isAgentPoolError(err) &&
        err.code === 'HOOK_NOT_FOUND' &&
        /"notAFunction" is not a function \(number\)/.test(err.message),
    );
  });

  it('publishes each point on its diagnostics channel to subscribers', async () => {
    const published: string[] = [];
    const listeners = HOOK_NAMES.map((name) => {
      const listener = (message: unknown) =>
        published.push(`${DIAGNOSTICS_CHANNELS[name]}:${(message as { runId: string }).runId}`);
      subscribe(DIAGNOSTICS_CHANNELS[name], listener);
      return [DIAGNOSTICS_CHANNELS[name], listener] as const;
    });
    try {
      f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: 'Two.' });
      const run = await (await f.pool.runs.start(P, 'tooled', { input: 'add' })).result;
      assert.deepEqual(published, [
        `agentpool:model-call:start:${run.id}`,
        `agentpool:model-call:end:${run.id}`,
        `agentpool:tool-call:start:${run.id}`,
        `agentpool:tool-call:end:${run.id}`,
        `agentpool:model-call:start:${run.id}`,
        `agentpool:model-call:end:${run.id}`,
        `agentpool:run:finished:${run.id}`,
      ]);
    } finally {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
    }
  });

  it('refuses a hooks option that names no hook point or is not a function', async () => {
    await assert.rejects(
      createAgentPool({ store: 'memory', hooks: { beforeRun: () => undefined } as never }),
      (err) => isAgentPoolError(err) && err.details['field'] === 'hooks.beforeRun',
    );
    await assert.rejects(
      createAgentPool({ store: 'memory', hooks: { onRunFinished: 'yes' } as never }),
      (err) => isAgentPoolError(err) && err.details['field'] === 'hooks.onRunFinished',
    );
  });
});
