/**
 * References checked when a definition is written: the registry asks its `checkReferences` hook on
 * every write of a new spec (create, update, apply, a rollout's candidate), never on reads; and the
 * pool's hook (`referenceCheck`, over the real model and tool catalogs) names the field at fault.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { referenceCheck } from '../../src/reference-check.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { ModelCatalog } from '../../src/models/catalog.ts';
import type { AgentSpec } from '../../src/registry/definition.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { ToolCatalog } from '../../src/tools/catalog.ts';
import { defineTool } from '../../src/tools/tool.ts';
import { json, serverFixture } from '../server/support.ts';

const P = 'acme';
const FIXTURES = join(import.meta.dirname, '../tools/fixtures');

/** A registry whose hook is the pool's check, over catalogs that know `custom:lookup` and the `mock` provider. */
function setup() {
  const store = new MemoryAgentStore();
  const checked: AgentSpec[] = [];
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks up',
    inputSchema: { type: 'object' },
    execute: () => 'found',
  });
  const check = referenceCheck(
    new ModelCatalog({ env: {}, custom: { mock: () => assert.fail('nothing is built at write time') } }),
    new ToolCatalog({ baseDir: FIXTURES, tools: [lookup] }),
  );
  const registry = new AgentRegistry({
    store,
    bus: new LocalEventBus<AgentEvent>(),
    clock: new ManualClock(),
    checkReferences: async (spec) => {
      checked.push(spec);
      await check(spec);
    },
  });
  return { registry, store, checked };
}

/** Asserts a VALIDATION_FAILED naming `field`, with a message matching `message`. */
function invalid(field: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
    assert.equal(err.status, 400);
    assert.equal(err.details.field, field);
    assert.match(err.message, message);
    return true;
  };
}

describe('references checked when a definition is written', () => {
  it('accepts builtin, registered and module tools, and models of known providers', async () => {
    const { registry } = setup();
    const agent = await registry.create(P, {
      name: 'ok',
      model: 'mock/any',
      fallbacks: ['openai/gpt-4o-mini', 'anthropic/claude', 'openai-compatible/llama', 'demo/assistant'],
      tools: [
        'calculator',
        'builtin:current_time',
        'custom:lookup',
        'module:./named.ts',
        'module:named.ts#to_upper',
      ],
    });
    assert.equal(agent.activeVersion, 1);
  });

  it('does not require API keys or base URLs at write time: they may be configured later', async () => {
    const { registry } = setup(); // env: {}, so openai, anthropic and openai-compatible are unconfigured
    await registry.create(P, { name: 'later', model: 'openai/gpt-4o', fallbacks: ['openai-compatible/x'] });
  });

  it('refuses an unknown builtin with 400, naming tools[i] and listing what exists', async () => {
    const { registry, store } = setup();
    await assert.rejects(
      registry.create(P, {
        name: 'a',
        tools: ['builtin:calculator', 'builtin:current_time', 'builtin:nosuch'],
      }),
      invalid(
        'tools[2]',
        /^tools\[2\] names no builtin tool "nosuch" \(builtin tools: .*calculator.*; registered tools \(custom:<name>\): lookup; or module:<path>/,
      ),
    );
    assert.equal(await store.count(P), 0, 'nothing was written');
  });

  it('refuses an unregistered custom tool, a missing module file, a path outside the base directory and an unsupported kind', async () => {
    const { registry } = setup();
    const cases: [string, RegExp][] = [
      [
        'custom:nope',
        /^tools\[0\] names no registered tool "nope" \(.*registered tools \(custom:<name>\): lookup/,
      ],
      [
        'module:./absent.ts',
        /^tools\[0\] names the tool module "\.\/absent\.ts", but .*absent\.ts is not a file \(module paths are resolved against .*fixtures\)/,
      ],
      [
        'module:../../package.json',
        /^tools\[0\] "module:\.\.\/\.\.\/package\.json" cannot be used: .*outside the tool base directory/,
      ],
      ['mcp:bad_server/tool', /^tools\[0\] "mcp:bad_server\/tool" cannot be used: needs an MCP server name/],
    ];
    for (const [ref, message] of cases) {
      await assert.rejects(
        registry.create(P, { name: 'a', tools: [ref] }),
        invalid('tools[0]', message),
        ref,
      );
    }
  });

  it('refuses a model or fallback of an unknown provider, naming the field and the known providers', async () => {
    const { registry } = setup();
    await assert.rejects(
      registry.create(P, { name: 'a', model: 'foo/bar' }),
      invalid(
        'model',
        /^model names an unknown model provider "foo" in "foo\/bar" \(known providers: demo, openai-compatible, openai, anthropic, mock\)$/,
      ),
    );
    await assert.rejects(
      registry.create(P, { name: 'a', fallbacks: ['demo/x', 'nope/y'] }),
      invalid('fallbacks[1]', /unknown model provider "nope"/),
    );
  });

  it('checks update, apply and a rollout candidate, and refuses before writing a version', async () => {
    const { registry, checked } = setup();
    await registry.create(P, { name: 'a' });
    await assert.rejects(
      registry.update(P, 'a', { tools: ['builtin:nosuch'] }),
      invalid('tools[0]', /nosuch/),
    );
    await assert.rejects(registry.apply(P, { name: 'a', model: 'foo/bar' }), invalid('model', /"foo"/));
    await assert.rejects(
      registry.update(P, 'a', { fallbacks: ['foo/bar'], rollout: { strategy: 'percentage', percent: 10 } }),
      invalid('fallbacks[0]', /"foo"/),
    );
    const agent = await registry.get(P, 'a');
    assert.equal(agent.latestVersion, 1);
    assert.equal(agent.rollout, null);
    assert.equal(checked.length, 4, 'one check per attempted write');
  });

  it('does not check writes that store no new spec: unchanged updates and applies, rollbacks, rollout flag changes', async () => {
    const { registry, checked } = setup();
    await registry.create(P, { name: 'a', instructions: 'v1' });
    await registry.update(P, 'a', { instructions: 'v2' });
    assert.equal(checked.length, 2);
    await registry.update(P, 'a', { instructions: 'v2' });
    await registry.apply(P, { name: 'a', instructions: 'v2' });
    await registry.rollback(P, 'a', 1);
    await registry.update(P, 'a', { instructions: 'v3', rollout: { strategy: 'percentage', percent: 5 } });
    assert.equal(checked.length, 3);
    await registry.update(P, 'a', { rollout: { strategy: 'percentage', percent: 50 } });
    assert.equal(checked.length, 3);
  });

  it('still loads an agent stored with a reference that no longer resolves (checks are at write, not read)', async () => {
    const { registry, store } = setup();
    const spec = { ...(await registry.validate({ name: 'old' })), tools: ['builtin:retired'] };
    await store.create({ id: 'agt_old', project: P, name: 'old', spec, now: 0 });
    assert.deepEqual((await registry.get(P, 'old')).spec.tools, ['builtin:retired']);
    assert.equal((await registry.list(P)).data.length, 1);
  });

  it('validate() checks a definition like a write and writes nothing', async () => {
    const { registry, store } = setup();
    const spec = await registry.validate({ name: 'a', tools: ['calculator'] });
    assert.equal(spec.maxSteps, 10, 'defaults applied');
    await assert.rejects(
      registry.validate({ name: 'a', tools: ['nosuch'] }),
      invalid('tools[0]', /"nosuch"/),
    );
    await assert.rejects(registry.validate({ name: 'a', maxSteps: 0 }), invalid('maxSteps', /maxSteps/));
    assert.equal(await store.count(P), 0);
  });
});

describe('references checked over HTTP', () => {
  it('answers 400 VALIDATION_FAILED naming the field on POST, PUT and PATCH, and writes nothing', async () => {
    const f = await serverFixture();
    try {
      const send = (method: 'POST' | 'PUT' | 'PATCH', url: string, payload: Record<string, unknown>) =>
        f.app.inject({ method, url, payload });
      const cases = [
        [await send('POST', '/v1/agents', { name: 'a', tools: ['builtin:nosuch'] }), 'tools[0]'],
        [await send('PUT', '/v1/agents/a', { model: 'foo/bar' }), 'model'],
      ] as const;
      for (const [res, field] of cases) {
        assert.equal(res.statusCode, 400, res.body);
        const body = json<{ error: { code: string; message: string; details: { field: string } } }>(res);
        assert.equal(body.error.code, 'VALIDATION_FAILED');
        assert.equal(body.error.details.field, field);
      }
      assert.equal(await f.pool.agents.find('default', 'a'), undefined);

      await send('POST', '/v1/agents', { name: 'b' });
      const patched = await send('PATCH', '/v1/agents/b', { fallbacks: ['slow/x', 'nope/y'] });
      assert.equal(patched.statusCode, 400, patched.body);
      assert.equal(
        json<{ error: { details: { field: string } } }>(patched).error.details.field,
        'fallbacks[1]',
      );
      assert.equal((await f.pool.agents.get('default', 'b')).latestVersion, 1);
    } finally {
      await f.close();
    }
  });
});
