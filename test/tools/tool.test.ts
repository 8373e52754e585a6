import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ManualClock } from '../../src/core/clock.ts';
import { AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';
import {
  bindTool,
  createToolAjv,
  defineTool,
  isTool,
  runTool,
  type Tool,
  type ToolContext,
  type ToolInputIssue,
} from '../../src/tools/tool.ts';

const code = (c: string, text?: RegExp) => (err: unknown) =>
  isAgentPoolError(err) && err.code === c && (text === undefined || text.test(err.message));

function context(signal = new AbortController().signal): ToolContext {
  return {
    signal,
    project: 'acme',
    agent: 'support',
    runId: 'run_1',
    threadId: 'thr_1',
    idempotencyKey: 'run_1:1:0',
  };
}

const weather = defineTool({
  name: 'get_weather',
  description: 'Current weather of a city.',
  inputSchema: z.object({ city: z.string().min(1), days: z.number().default(1) }),
  execute: ({ city, days }) => ({ city, days }),
});

const jsonTool = defineTool({
  name: 'search',
  description: 'Searches documents.',
  inputSchema: {
    type: 'object',
    properties: { query: { type: 'string' }, limit: { type: 'integer', minimum: 1 } },
    required: ['query'],
    additionalProperties: false,
  },
  execute: (input) => input,
});

function issuesOf(fn: () => unknown): ToolInputIssue[] {
  try {
    fn();
  } catch (err) {
    assert.ok(isAgentPoolError(err, 'TOOL_INPUT_INVALID'), `expected TOOL_INPUT_INVALID, got ${String(err)}`);
    return err.details.issues as ToolInputIssue[];
  }
  assert.fail('expected parse to throw');
}

function toolOf(execute: (input: Record<string, unknown>, ctx: ToolContext) => unknown): Tool {
  return defineTool({ name: 't', description: 'A test tool.', inputSchema: { type: 'object' }, execute });
}

describe('defineTool', () => {
  it('accepts the names model providers accept and refuses others, naming the field', () => {
    for (const name of ['a', 'get-weather_2', 'x'.repeat(64)]) {
      assert.equal(defineTool({ ...specOf(), name }).name, name);
    }
    for (const name of ['', 'has space', 'dot.name', 'x'.repeat(65), 'ünïcode']) {
      assert.throws(
        () => defineTool({ ...specOf(), name }),
        code('VALIDATION_FAILED', /^tool\.name must match/),
      );
    }
  });

  it('requires a non-empty description, an execute function and an object input schema', () => {
    assert.throws(
      () => defineTool({ ...specOf(), description: '  ' }),
      code('VALIDATION_FAILED', /^tool\.description .*"t"/),
    );
    assert.throws(
      () => defineTool({ ...specOf(), execute: 'nope' as unknown as () => null }),
      code('VALIDATION_FAILED', /^tool\.execute/),
    );
    assert.throws(
      () => defineTool({ ...specOf(), inputSchema: { type: 'string' } }),
      code('VALIDATION_FAILED', /^tool\.inputSchema must describe an object/),
    );
    assert.throws(
      () => defineTool({ ...specOf(), inputSchema: z.string() }),
      code('VALIDATION_FAILED', /^tool\.inputSchema must describe an object/),
    );
    assert.throws(
      () => defineTool({ ...specOf(), inputSchema: z.object({ at: z.date() }) }),
      code('VALIDATION_FAILED', /^tool\.inputSchema cannot be expressed as JSON Schema/),
    );
    assert.throws(
      () =>
        defineTool({
          ...specOf(),
          inputSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' },
        }),
      code('VALIDATION_FAILED', /^tool\.inputSchema\.\$schema must be JSON Schema draft-07/),
    );
  });

  it('turns a zod schema into the JSON Schema the model sees, describing the input side', () => {
    assert.deepEqual(weather.jsonSchema, {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { city: { type: 'string', minLength: 1 }, days: { type: 'number', default: 1 } },
      required: ['city'],
    });
  });

  it('parses zod input into zod output and lists every problem with its path', () => {
    assert.deepEqual(weather.parse({ city: 'Oslo' }), { city: 'Oslo', days: 1 });
    const issues = issuesOf(() => weather.parse({ city: '', days: 'two' }));
    assert.deepEqual(
      issues.map((i) => i.path),
      ['/city', '/days'],
    );
    assert.throws(
      () => weather.parse('Oslo'),
      code('TOOL_INPUT_INVALID', /invalid input for tool "get_weather": \(root\)/),
    );
  });

  it('validates JSON Schema input with ajv, listing all problems in the message and details', () => {
    assert.deepEqual(jsonTool.parse({ query: 'x', limit: 2 }), { query: 'x', limit: 2 });
    const issues = issuesOf(() => jsonTool.parse({ limit: 0, extra: true }));
    assert.deepEqual(issues, [
      { path: '', message: "must have required property 'query'" },
      { path: '', message: 'must NOT have additional properties ("extra")' },
      { path: '/limit', message: 'must be >= 1' },
    ]);
    assert.throws(
      () => jsonTool.parse({ query: 1 }),
      code('TOOL_INPUT_INVALID', /^invalid input for tool "search": \/query: must be string$/),
    );
  });

  it('keeps its own copy of a JSON Schema, so later changes to the caller object change nothing', () => {
    const schema = { type: 'object' as const, properties: { n: { type: 'number' as const } } };
    const tool = defineTool({ ...specOf(), inputSchema: schema });
    schema.properties.n.type = 'string' as 'number';
    assert.deepEqual(tool.jsonSchema.properties, { n: { type: 'number' } });
    assert.deepEqual(tool.parse({ n: 1 }), { n: 1 });
  });

  it('brands its tools, frozen; look-alike objects are not tools', () => {
    assert.ok(isTool(weather));
    assert.ok(Object.isFrozen(weather));
    assert.ok(!isTool({ ...weather }));
    assert.ok(!isTool(null));
  });
});

describe('bindTool', () => {
  it('compiles a JSON Schema against the given ajv at once, so a broken schema fails at binding', () => {
    const broken = defineTool({
      ...specOf(),
      inputSchema: { type: 'object', properties: { n: { type: 'integr' as 'integer' } } },
    });
    // Unbound, the schema compiles on first use.
    assert.throws(() => broken.parse({}), code('VALIDATION_FAILED', /not a valid JSON Schema \(tool "t"\)/));
    assert.throws(
      () => bindTool(broken, createToolAjv()),
      code('VALIDATION_FAILED', /not a valid JSON Schema/),
    );
  });

  it('returns a tool with the same definition for JSON Schema, and zod tools unchanged', () => {
    const bound = bindTool(jsonTool, createToolAjv());
    assert.notEqual(bound, jsonTool);
    assert.ok(isTool(bound));
    assert.equal(bound.execute, jsonTool.execute);
    assert.deepEqual(bound.jsonSchema, jsonTool.jsonSchema);
    assert.throws(() => bound.parse({}), code('TOOL_INPUT_INVALID'));
    assert.equal(bindTool(weather, createToolAjv()), weather);
  });
});

describe('runTool', () => {
  it('returns the output normalised to JSON, passing the context through', async () => {
    let seen: ToolContext | undefined;
    const tool = toolOf((input, ctx) => {
      seen = ctx;
      return { input, at: new Date(0), skipped: undefined };
    });
    const result = await runTool(tool, { a: 1 }, context(), 1000);
    assert.deepEqual(result, { ok: true, output: { input: { a: 1 }, at: '1970-01-01T00:00:00.000Z' } });
    assert.equal(seen?.project, 'acme');
    assert.equal(seen?.runId, 'run_1');
    assert.equal(seen?.threadId, 'thr_1');
    assert.deepEqual(
      await runTool(
        toolOf(() => undefined),
        {},
        context(),
        1000,
      ),
      { ok: true, output: null },
    );
  });

  it('answers TOOL_INPUT_INVALID without running the tool when the input is invalid', async () => {
    let ran = false;
    const tool = defineTool({
      ...specOf(),
      inputSchema: z.object({ n: z.number() }),
      execute: () => (ran = true),
    });
    const result = await runTool(tool, { n: 'one' }, context(), 1000);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.error.code, 'TOOL_INPUT_INVALID');
    assert.match(!result.ok ? result.error.message : '', /\/n: Invalid input: expected number/);
    assert.equal(ran, false);
  });

  it('turns a throw, sync or async, into TOOL_FAILED with the original message', async () => {
    const sync = toolOf(() => {
      throw new Error('disk full');
    });
    const async = toolOf(() => Promise.reject(new TypeError('bad response')));
    assert.deepEqual(await runTool(sync, {}, context(), 1000), {
      ok: false,
      error: { code: 'TOOL_FAILED', message: 'disk full' },
    });
    assert.deepEqual(await runTool(async, {}, context(), 1000), {
      ok: false,
      error: { code: 'TOOL_FAILED', message: 'bad response' },
    });
  });

  it('keeps the code of an AgentPoolError a tool throws', async () => {
    const tool = toolOf(() => {
      throw new AgentPoolError('TOOL_INPUT_INVALID', 'unknown city');
    });
    assert.deepEqual(await runTool(tool, {}, context(), 1000), {
      ok: false,
      error: { code: 'TOOL_INPUT_INVALID', message: 'unknown city' },
    });
  });

  it('answers TOOL_TIMEOUT when the tool outlives its timeout, and aborts the tool signal', async () => {
    const clock = new ManualClock();
    let toolSignal: AbortSignal | undefined;
    const tool = toolOf((_input, ctx) => {
      toolSignal = ctx.signal;
      return new Promise(() => {});
    });
    let settled = false;
    const pending = runTool(tool, {}, context(), 500, clock).then((r) => {
      settled = true;
      return r;
    });
    clock.advance(499);
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false);
    assert.equal(toolSignal?.aborted, false);
    clock.advance(1);
    assert.deepEqual(await pending, {
      ok: false,
      error: { code: 'TOOL_TIMEOUT', message: 'tool "t" timed out after 500 ms' },
    });
    assert.equal(toolSignal?.aborted, true);
    assert.ok(isAgentPoolError(toolSignal?.reason, 'TOOL_TIMEOUT'));
    assert.equal(clock.pendingTimers, 0);
  });

  it('sets no timer for a tool with ownTimeout, which the run can still cancel', async () => {
    const clock = new ManualClock();
    const run = new AbortController();
    const tool = defineTool({
      name: 't',
      description: 'Bounds itself.',
      inputSchema: { type: 'object' },
      execute: () => new Promise(() => {}),
      ownTimeout: true,
    });
    assert.equal(tool.ownTimeout, true);
    const pending = runTool(tool, {}, context(run.signal), 500, clock);
    assert.equal(clock.pendingTimers, 0);
    clock.advance(1000);
    run.abort();
    const result = await pending;
    assert.equal(!result.ok && result.error.code, 'RUN_CANCELLED');
    assert.equal(bindTool(tool, createToolAjv()).ownTimeout, true, 'kept when bound to a catalog');
    assert.throws(
      () => defineTool({ ...specOf(), ownTimeout: 'yes' as unknown as boolean }),
      /tool\.ownTimeout must be a boolean/,
    );
  });

  it('answers RUN_CANCELLED when the run is aborted, and aborts the signal the tool sees', async () => {
    const run = new AbortController();
    let toolSignal: AbortSignal | undefined;
    const tool = toolOf((_input, ctx) => {
      toolSignal = ctx.signal;
      // Like fetch: rejects when its signal aborts. The late rejection must not go unhandled.
      return new Promise((_resolve, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const pending = runTool(tool, {}, context(run.signal), 10_000, new ManualClock());
      assert.notEqual(toolSignal, run.signal);
      run.abort();
      const result = await pending;
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.error.code, 'RUN_CANCELLED');
      assert.equal(toolSignal?.aborted, true);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('does not start a tool when the run is already cancelled', async () => {
    let ran = false;
    const result = await runTool(
      toolOf(() => (ran = true)),
      {},
      context(AbortSignal.abort()),
      1000,
    );
    assert.equal(!result.ok && result.error.code, 'RUN_CANCELLED');
    assert.equal(ran, false);
  });

  it('answers TOOL_FAILED for output that is not JSON-serialisable', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const outputs: [unknown, RegExp][] = [
      [10n, /BigInt/],
      [circular, /circular/],
      [{ fn: () => 1 }, /a function/],
      [{ n: Number.NaN }, /NaN/],
      [new Map([[1, 2]]), /a Map/],
    ];
    for (const [output, reason] of outputs) {
      const result = await runTool(
        toolOf(() => output),
        {},
        context(),
        1000,
      );
      assert.equal(!result.ok && result.error.code, 'TOOL_FAILED', String(reason));
      assert.match(
        !result.ok ? result.error.message : '',
        /tool "t" returned output that is not JSON-serialisable/,
      );
      assert.match(!result.ok ? result.error.message : '', reason);
    }
  });
});

function specOf() {
  return {
    name: 't',
    description: 'A test tool.',
    inputSchema: { type: 'object' } as const,
    execute: () => null,
  };
}
