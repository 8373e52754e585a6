import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ManualClock, systemClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { parseToolRef, resolveToolCatalogOptions, ToolCatalog } from '../../src/tools/catalog.ts';
import { defineTool, type Tool, type ToolContext } from '../../src/tools/tool.ts';
import { trackImports } from './fixtures/counter.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const code = (c: string, text?: RegExp) => (err: unknown) =>
  isAgentPoolError(err) && err.code === c && (text === undefined || text.test(err.message));
const names = (tools: readonly Tool[]) => tools.map((t) => t.name);

const lookup = defineTool({
  name: 'lookup_order',
  description: 'Finds an order by id.',
  inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
  execute: (input) => ({ id: input.id, status: 'shipped' }),
});
const refund = defineTool({
  name: 'refund',
  description: 'Refunds an order.',
  inputSchema: z.object({ id: z.string() }),
  execute: ({ id }) => ({ refunded: id }),
});

function catalog(options: ConstructorParameters<typeof ToolCatalog>[0] = {}): ToolCatalog {
  return new ToolCatalog({ baseDir: fixtures, tools: [lookup, refund], ...options });
}

describe('tool catalog options', () => {
  it('default to the working directory, no custom tools and a 30 s tool timeout', () => {
    const o = resolveToolCatalogOptions();
    assert.deepEqual(
      [
        o.baseDir,
        o.allowOutsideBaseDir,
        o.maxModules,
        o.tools,
        o.defaultTimeoutMs,
        o.clock,
        o.builtins.clock,
        o.builtins.fetchAllowlist,
      ],
      [process.cwd(), false, 1000, [], 30_000, systemClock, systemClock, []],
    );
  });

  it('reject custom tools that are not tools or repeat a name, naming the field', () => {
    assert.throws(
      () => new ToolCatalog({ tools: [lookup, { name: 'x' } as unknown as Tool] }),
      code('VALIDATION_FAILED', /^tools\.tools\[1\] must be a tool made with defineTool/),
    );
    assert.throws(
      () => new ToolCatalog({ tools: [lookup, lookup] }),
      code('VALIDATION_FAILED', /^tools\.tools\[1\] repeats the tool name "lookup_order"/),
    );
    assert.throws(
      () => new ToolCatalog({ defaultTimeoutMs: -1 }),
      /tools\.defaultTimeoutMs must be a positive integer/,
    );
    assert.throws(
      () => new ToolCatalog({ builtins: { fetchAllowlist: ['http://x'] } }),
      /^AgentPoolError: tools\.builtins\.fetchAllowlist\[0\]/,
    );
  });
});

describe('tool references', () => {
  it('parse every supported kind', () => {
    assert.deepEqual(parseToolRef('calculator'), { kind: 'builtin', name: 'calculator' });
    assert.deepEqual(parseToolRef('builtin:fetch_url'), { kind: 'builtin', name: 'fetch_url' });
    assert.deepEqual(parseToolRef('custom:refund'), { kind: 'custom', name: 'refund' });
    assert.deepEqual(parseToolRef('module:./a/b.ts'), { kind: 'module', path: './a/b.ts', name: null });
    assert.deepEqual(parseToolRef('module:./a#b/c.ts#tool'), {
      kind: 'module',
      path: './a#b/c.ts',
      name: 'tool',
    });
  });

  it('refuse kinds that are not supported yet, and empty parts', () => {
    for (const ref of ['http:https://api.example.com/tool', 'agent:researcher']) {
      const kind = ref.slice(0, ref.indexOf(':'));
      assert.throws(
        () => parseToolRef(ref),
        code(
          'TOOL_NOT_FOUND',
          new RegExp(
            `tool kind "${kind}" is not supported yet \\(supported: builtin, module, custom, mcp\\)`,
          ),
        ),
      );
    }
    assert.throws(() => parseToolRef('module:'), code('TOOL_NOT_FOUND', /needs a file path/));
    assert.throws(() => parseToolRef('module:x.ts#'), code('TOOL_NOT_FOUND', /needs a tool name after "#"/));
    assert.throws(() => parseToolRef('custom:'), code('TOOL_NOT_FOUND', /needs a tool name/));
    assert.throws(() => parseToolRef(''), code('TOOL_NOT_FOUND', /non-empty/));
    assert.throws(() => parseToolRef('mcp:'), code('TOOL_NOT_FOUND', /needs an MCP server name/));
    assert.throws(() => parseToolRef('mcp:bad_name'), code('TOOL_NOT_FOUND', /needs an MCP server name/));
    assert.throws(() => parseToolRef('mcp:files/'), code('TOOL_NOT_FOUND', /needs a tool name after "\/"/));
  });

  it('parse mcp:<server> (every tool) and mcp:<server>/<tool>, the first "/" splitting them', () => {
    assert.deepEqual(parseToolRef('mcp:github'), { kind: 'mcp', server: 'github', name: null });
    assert.deepEqual(parseToolRef('mcp:github/search'), { kind: 'mcp', server: 'github', name: 'search' });
    assert.deepEqual(parseToolRef('mcp:fs/read/file'), { kind: 'mcp', server: 'fs', name: 'read/file' });
  });
});

describe('tool catalog check (a reference, when a definition is written)', () => {
  const invalid = (field: string, text: RegExp) => (err: unknown) => {
    assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
    assert.equal(err.details.field, field);
    assert.match(err.message, text);
    return true;
  };

  it('passes builtin (bare or prefixed), registered and module references, importing nothing', async () => {
    const c = catalog();
    for (const ref of [
      'calculator',
      'builtin:fetch_url',
      'custom:refund',
      'module:./named.ts',
      'module:throws.ts#x',
    ]) {
      await c.check(ref, 'tools[0]');
    }
    assert.equal(c.modules.size, 0, 'no module was loaded (throws.ts would throw when imported)');
  });

  it('names the field and lists what exists for an unknown builtin or registered tool', async () => {
    const c = catalog();
    await assert.rejects(
      c.check('builtin:nosuch', 'tools[3]'),
      invalid(
        'tools[3]',
        /^tools\[3\] names no builtin tool "nosuch" \(builtin tools: .*fetch_url.*; registered tools \(custom:<name>\): lookup_order, refund; or module:<path>/,
      ),
    );
    await assert.rejects(c.check('custom:nope'), invalid('tools', /names no registered tool "nope"/));
  });

  it('refuses a module file that does not exist, resolves outside the base directory, or is not a module', async () => {
    const c = catalog();
    await assert.rejects(
      c.check('module:./gone.ts'),
      invalid('tools', /gone\.ts is not a file \(module paths are resolved against .*fixtures\)/),
    );
    await assert.rejects(c.check('module:./'), invalid('tools', /must be a \.js, .* file/));
    await assert.rejects(
      c.check('module:../catalog.test.ts'),
      invalid('tools', /outside the tool base directory/),
    );
    // allowed outside when the catalog allows it
    await catalog({ allowOutsideBaseDir: true }).check('module:../catalog.test.ts');
  });

  it('accepts mcp: references (declared per project, checked at activation) and refuses malformed ones', async () => {
    const c = catalog();
    await c.check('mcp:files/read');
    await assert.rejects(
      c.check('mcp:files_x/read'),
      invalid('tools', /"mcp:files_x\/read" cannot be used: needs an MCP server name/),
    );
    await assert.rejects(c.check('custom:'), invalid('tools', /needs a tool name after "custom:"/));
  });
});

describe('tool catalog', () => {
  it('resolves builtin, custom and module references in reference order', async () => {
    const tools = await catalog().resolve([
      'calculator',
      'builtin:current_time',
      'custom:refund',
      'module:counted.ts',
      'module:named.ts#to_upper',
    ]);
    assert.deepEqual(names(tools), ['calculator', 'current_time', 'refund', 'add', 'echo', 'to_upper']);
    assert.deepEqual(await catalog().resolve([]), []);
  });

  it('returns tools that parse and run', async () => {
    const c = catalog();
    const [lookupTool, add] = await c.resolve(['custom:lookup_order', 'module:counted.ts#add']);
    assert.ok(lookupTool && add);
    assert.throws(() => lookupTool.parse({}), code('TOOL_INPUT_INVALID', /must have required property 'id'/));
    const ctx: ToolContext = {
      signal: new AbortController().signal,
      project: 'p',
      agent: 'a',
      runId: 'r',
      threadId: null,
      idempotencyKey: 'run_test:1:0',
    };
    assert.deepEqual(await c.run(add, { a: 2, b: 3 }, ctx), { ok: true, output: { sum: 5 } });
    assert.deepEqual(await c.run(lookupTool, { id: 'o1' }, ctx), {
      ok: true,
      output: { id: 'o1', status: 'shipped' },
    });
  });

  it('returns the same tool objects on every resolve and never imports a module again', async () => {
    const imports = trackImports('/named.ts');
    try {
      const c = catalog();
      const refs = ['calculator', 'custom:lookup_order', 'module:named.ts', 'module:counted.ts#echo'];
      const first = await c.resolve(refs);
      const second = await c.resolve(refs);
      const third = await c.resolve(['module:named.ts#to_lower']);
      assert.equal(first.length, 5);
      first.forEach((tool, i) => assert.equal(second[i], tool, tool.name));
      assert.equal(
        third[0],
        first.find((t) => t.name === 'to_lower'),
      );
      assert.equal(imports.count(), 1);
      assert.equal(c.modules.size, 2);
    } finally {
      imports.stop();
    }
  });

  it('keeps catalogs apart: their own custom tools and builtin policies', async () => {
    const open = new ToolCatalog({ builtins: { fetchAllowlist: ['127.0.0.1'] } });
    const closed = new ToolCatalog();
    await assert.rejects(open.resolve(['custom:refund']), code('TOOL_NOT_FOUND', /registered: none/));
    const [a] = await open.resolve(['fetch_url']);
    const [b] = await closed.resolve(['fetch_url']);
    assert.notEqual(a, b);
  });

  it('fails with TOOL_NOT_FOUND naming the reference and what is missing', async () => {
    const c = catalog();
    const cases: [string, RegExp][] = [
      [
        'weather',
        /^cannot resolve tool reference "weather": no builtin tool named "weather" \(builtins: current_time, calculator, fetch_url;/,
      ],
      ['builtin:nope', /no builtin tool named "nope"/],
      ['custom:nope', /no custom tool named "nope" is registered \(registered: lookup_order, refund\)/],
      [
        'module:missing.ts',
        new RegExp(`"module:missing\\.ts": tool module ${join(fixtures, 'missing.ts')} does not exist`),
      ],
      ['module:named.ts#nope', /"module:named\.ts#nope": tool module .*named\.ts has no tool named "nope"/],
      ['module:no-tools.ts', /exports no tools/],
      ['module:throws.ts', /failed to load: fixture exploded/],
      [
        'mcp:github',
        /^cannot resolve tool reference "mcp:github": MCP servers are resolved by an agent pool only/,
      ],
    ];
    for (const [ref, message] of cases) {
      await assert.rejects(c.resolve(['calculator', ref]), (err) => {
        assert.ok(isAgentPoolError(err, 'TOOL_NOT_FOUND'), `${ref}: ${String(err)}`);
        assert.match(err.message, message);
        assert.equal(err.details.ref, ref);
        return true;
      });
    }
  });

  it('reports the first failing reference in reference order', async () => {
    await assert.rejects(
      catalog().resolve(['calculator', 'module:missing.ts', 'custom:nope']),
      code('TOOL_NOT_FOUND', /module:missing\.ts/),
    );
  });

  it('fails with VALIDATION_FAILED when two references yield the same tool name', async () => {
    const c = catalog({ tools: [defineTool({ ...refund, name: 'calculator' })] });
    const cases: [string[], RegExp][] = [
      [['calculator', 'builtin:calculator'], /"calculator" twice: in "calculator" and "builtin:calculator"/],
      [['builtin:calculator', 'custom:calculator'], /"calculator" twice/],
      [
        ['module:named.ts', 'module:named.ts#to_upper'],
        /"to_upper" twice: in "module:named\.ts" and "module:named\.ts#to_upper"/,
      ],
    ];
    for (const [refs, message] of cases) {
      await assert.rejects(c.resolve(refs), code('VALIDATION_FAILED', message));
    }
  });

  it('compiles JSON Schemas when resolving, so a broken schema fails the activation', async () => {
    await assert.rejects(
      catalog().resolve(['module:bad-schema.ts']),
      code(
        'VALIDATION_FAILED',
        /"module:bad-schema\.ts": tool\.inputSchema is not a valid JSON Schema \(tool "broken"\)/,
      ),
    );
  });

  it('runs tool calls with the default timeout on its clock, which the builtins share', async () => {
    const clock = new ManualClock();
    const hang = defineTool({
      name: 'hang',
      description: 'Never answers.',
      inputSchema: { type: 'object' },
      execute: () => new Promise(() => {}),
    });
    const c = new ToolCatalog({ tools: [hang], defaultTimeoutMs: 250, clock });
    assert.equal(c.options.builtins.clock, clock);
    const [tool] = await c.resolve(['custom:hang']);
    assert.ok(tool);
    const ctx: ToolContext = {
      signal: new AbortController().signal,
      project: 'p',
      agent: 'a',
      runId: 'r',
      threadId: null,
      idempotencyKey: 'run_test:1:0',
    };
    const pending = c.run(tool, {}, ctx);
    clock.advance(250);
    assert.deepEqual(await pending, {
      ok: false,
      error: { code: 'TOOL_TIMEOUT', message: 'tool "hang" timed out after 250 ms' },
    });
  });
});
