import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  APICallError,
  type JSONSchema7,
  type LanguageModelV3,
  type LanguageModelV3CallOptions,
  type LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import { createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { buildServer } from '../../src/server/app.ts';
import { ModelCatalog, parseModelRef, resolveModelCatalogOptions } from '../../src/models/catalog.ts';
import { DemoLanguageModel } from '../../src/models/demo-model.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';

const code =
  (c: string, ...mentions: string[]) =>
  (err: unknown) => {
    assert.ok(isAgentPoolError(err, c as never), `expected ${c}, got ${String(err)}`);
    for (const m of mentions) assert.ok(err.message.includes(m), `"${err.message}" mentions ${m}`);
    return true;
  };

const ask = (text: string, extra: Partial<LanguageModelV3CallOptions> = {}): LanguageModelV3CallOptions => ({
  prompt: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: [{ type: 'text', text }] },
  ],
  ...extra,
});

async function collect(
  stream: ReadableStream<LanguageModelV3StreamPart>,
): Promise<LanguageModelV3StreamPart[]> {
  const parts: LanguageModelV3StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

const stub = (modelId: string): LanguageModelV3 => new DemoLanguageModel(`stub:${modelId}`);

describe('model catalog options', () => {
  it('pins the defaults when neither options nor environment say anything', () => {
    const o = resolveModelCatalogOptions({ env: {} });
    assert.equal(o.maxCachedModels, 10_000);
    assert.deepEqual(o.providers, {
      'openai-compatible': {
        baseURL: undefined,
        apiKey: undefined,
        apiKeyEnv: 'AGENTPOOL_OPENAI_COMPATIBLE_API_KEY',
        name: 'openai-compatible',
        headers: {},
        structuredOutputs: true,
      },
      openai: { apiKey: undefined, apiKeyEnv: 'OPENAI_API_KEY', baseURL: 'https://api.openai.com/v1' },
      anthropic: {
        apiKey: undefined,
        apiKeyEnv: 'ANTHROPIC_API_KEY',
        baseURL: 'https://api.anthropic.com/v1',
      },
    });
    assert.equal(o.named.size, 0);
    assert.equal(o.custom.size, 0);
  });

  it('falls back to each environment variable', () => {
    const o = resolveModelCatalogOptions({
      env: {
        AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: 'http://localhost:11434/v1',
        AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'compat-key',
        OPENAI_API_KEY: 'sk-openai',
        OPENAI_BASE_URL: 'http://proxy.local/v1',
        ANTHROPIC_API_KEY: 'sk-ant',
        ANTHROPIC_BASE_URL: 'http://anthropic.local/v1',
      },
    });
    assert.equal(o.providers['openai-compatible'].baseURL, 'http://localhost:11434/v1');
    assert.equal(o.providers['openai-compatible'].apiKey, 'compat-key');
    assert.deepEqual(o.providers.openai, {
      apiKey: 'sk-openai',
      apiKeyEnv: 'OPENAI_API_KEY',
      baseURL: 'http://proxy.local/v1',
    });
    assert.deepEqual(o.providers.anthropic, {
      apiKey: 'sk-ant',
      apiKeyEnv: 'ANTHROPIC_API_KEY',
      baseURL: 'http://anthropic.local/v1',
    });
  });

  it('prefers options over the environment, and ignores empty variables', () => {
    const o = resolveModelCatalogOptions({
      env: { OPENAI_API_KEY: 'from-env', ANTHROPIC_API_KEY: '' },
      providers: { openai: { apiKey: 'from-options' } },
    });
    assert.equal(o.providers.openai.apiKey, 'from-options');
    assert.equal(o.providers.anthropic.apiKey, undefined);
  });

  it('rejects bad values, naming the field', () => {
    assert.throws(
      () =>
        resolveModelCatalogOptions({ env: {}, providers: { 'openai-compatible': { baseURL: 'not a url' } } }),
      code('VALIDATION_FAILED', 'providers.openai-compatible.baseURL'),
    );
    assert.throws(
      () => resolveModelCatalogOptions({ env: {}, providers: { mistral: {} } as never }),
      code('VALIDATION_FAILED', 'providers.mistral'),
    );
    assert.throws(
      () => resolveModelCatalogOptions({ env: {}, maxCachedModels: 0 }),
      code('VALIDATION_FAILED', 'maxCachedModels'),
    );
    assert.throws(
      () => resolveModelCatalogOptions({ env: {}, custom: { 'Bad Name': stub } }),
      code('VALIDATION_FAILED', 'custom.Bad Name'),
    );
    assert.throws(
      () => resolveModelCatalogOptions({ env: { OPENAI_BASE_URL: 'nope' } }),
      code('VALIDATION_FAILED', 'OPENAI_BASE_URL'),
    );
  });
});

describe('model catalog', () => {
  it('parses provider/model-id, keeping slashes inside the model id', () => {
    assert.deepEqual(parseModelRef('openai-compatible/meta-llama/Llama-3-8b'), {
      provider: 'openai-compatible',
      modelId: 'meta-llama/Llama-3-8b',
    });
  });

  it('rejects malformed refs with VALIDATION_FAILED naming the model field', () => {
    const catalog = new ModelCatalog({ env: {} });
    for (const bad of [
      'gpt-4o',
      '/gpt-4o',
      'openai/',
      'Open AI/x',
      'openai/has space',
      'x/'.padEnd(300, 'y'),
    ]) {
      assert.throws(
        () => catalog.resolve(bad),
        (err) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === 'model',
        bad,
      );
    }
  });

  it('resolves demo/<anything> to the demo model without keys or network', () => {
    const model = new ModelCatalog({ env: {} }).resolve('demo/assistant');
    assert.ok(model instanceof DemoLanguageModel);
    assert.equal(model.provider, 'demo');
    assert.equal(model.modelId, 'assistant');
  });

  it('returns the same model object for the same ref, and separate catalogs share nothing', () => {
    const catalog = new ModelCatalog({ env: { OPENAI_API_KEY: 'sk' } });
    const a = catalog.resolve('openai/gpt-4o');
    assert.equal(catalog.resolve('openai/gpt-4o'), a);
    assert.notEqual(catalog.resolve('openai/gpt-4o-mini'), a);
    assert.equal(catalog.resolve('demo/x'), catalog.resolve('demo/x'));
    assert.notEqual(new ModelCatalog({ env: { OPENAI_API_KEY: 'sk' } }).resolve('openai/gpt-4o'), a);
  });

  it('bounds its cache, dropping the least recently resolved model', () => {
    const catalog = new ModelCatalog({ env: {}, maxCachedModels: 2 });
    const a = catalog.resolve('demo/a');
    const b = catalog.resolve('demo/b');
    assert.equal(catalog.resolve('demo/a'), a, 'a is now the most recent');
    catalog.resolve('demo/c');
    assert.equal(catalog.size, 2);
    assert.equal(catalog.resolve('demo/a'), a, 'a survived');
    assert.notEqual(catalog.resolve('demo/b'), b, 'b was dropped and rebuilt');
    catalog.clear();
    assert.equal(catalog.size, 0);
  });

  it('fails an unknown provider with MODEL_NOT_FOUND listing the known providers', () => {
    const catalog = new ModelCatalog({ env: {}, custom: { mock: stub } });
    assert.throws(
      () => catalog.resolve('mistral/large'),
      code('MODEL_NOT_FOUND', 'mistral', 'demo', 'openai-compatible', 'openai', 'anthropic', 'mock'),
    );
  });

  it('check() passes a known provider, configured or not, and builds nothing', () => {
    const catalog = new ModelCatalog({ env: {}, custom: { mock: () => assert.fail('not built') } });
    for (const ref of ['demo/x', 'openai/gpt-4o', 'anthropic/claude', 'openai-compatible/llama', 'mock/m']) {
      catalog.check(ref, 'model');
    }
    assert.equal(catalog.size, 0);
  });

  it('check() refuses an unknown provider or a malformed ref with VALIDATION_FAILED naming the field', () => {
    const catalog = new ModelCatalog({ env: {} });
    assert.throws(
      () => catalog.check('foo/bar', 'fallbacks[2]'),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        assert.equal(err.details.field, 'fallbacks[2]');
        assert.deepEqual(err.details.knownProviders, ['demo', 'openai-compatible', 'openai', 'anthropic']);
        assert.equal(
          err.message,
          'fallbacks[2] names an unknown model provider "foo" in "foo/bar" (known providers: demo, openai-compatible, openai, anthropic)',
        );
        return true;
      },
    );
    assert.throws(
      () => catalog.check('no-slash'),
      (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.field === 'model',
    );
  });

  it('fails an unconfigured provider at once with PROVIDER_NOT_CONFIGURED naming the option and env var', () => {
    // An empty injected env: a key in this process's own environment must not leak in.
    const catalog = new ModelCatalog({ env: {} });
    assert.throws(
      () => catalog.resolve('openai-compatible/llama3'),
      code('PROVIDER_NOT_CONFIGURED', 'AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL', 'baseURL'),
    );
    assert.throws(
      () => catalog.resolve('openai/gpt-4o'),
      code('PROVIDER_NOT_CONFIGURED', 'OPENAI_API_KEY', 'apiKey'),
    );
    assert.throws(
      () => catalog.resolve('anthropic/claude-sonnet-4'),
      code('PROVIDER_NOT_CONFIGURED', 'ANTHROPIC_API_KEY', 'apiKey'),
    );
    assert.equal(catalog.size, 0, 'failures are not cached');
  });

  it('reads the environment once, at construction', () => {
    const env: Record<string, string | undefined> = {};
    const catalog = new ModelCatalog({ env });
    env['OPENAI_API_KEY'] = 'set-too-late';
    assert.throws(() => catalog.resolve('openai/gpt-4o'), code('PROVIDER_NOT_CONFIGURED'));
    assert.ok(new ModelCatalog({ env }).resolve('openai/gpt-4o'));
  });

  it('builds anthropic models when a key is configured', () => {
    const model = new ModelCatalog({ env: { ANTHROPIC_API_KEY: 'sk-ant' } }).resolve(
      'anthropic/claude-sonnet-4-0',
    );
    assert.equal(model.specificationVersion, 'v3');
    assert.equal(model.modelId, 'claude-sonnet-4-0');
    assert.match(model.provider, /^anthropic/);
  });

  it('serves custom providers, caching their models, and lets them replace a built-in one', () => {
    const seen: string[] = [];
    const catalog = new ModelCatalog({
      env: {},
      custom: {
        mock: (id) => {
          seen.push(id);
          return stub(id);
        },
        openai: stub,
      },
    });
    const m = catalog.resolve('mock/fast');
    assert.equal(m.modelId, 'stub:fast');
    assert.equal(catalog.resolve('mock/fast'), m);
    assert.deepEqual(seen, ['fast']);
    assert.equal(catalog.resolve('openai/gpt-4o').modelId, 'stub:gpt-4o', 'no key needed once mocked');
  });

  it('reports a custom factory that throws or returns a non-model', () => {
    const catalog = new ModelCatalog({
      env: {},
      custom: {
        broken: () => {
          throw new Error('no such mock');
        },
        wrong: () => ({}) as LanguageModelV3,
      },
    });
    assert.throws(() => catalog.resolve('broken/x'), code('MODEL_NOT_FOUND', 'no such mock'));
    assert.throws(() => catalog.resolve('wrong/x'), code('VALIDATION_FAILED', 'custom.wrong'));
  });
});

describe('model catalog against a fake OpenAI-compatible server', () => {
  let fake: FakeOpenAI;
  let catalog: ModelCatalog;
  const calculator = {
    type: 'function' as const,
    name: 'calculator',
    inputSchema: { type: 'object' as const },
  };

  before(async () => {
    fake = await startFakeOpenAI();
    catalog = new ModelCatalog({
      env: {
        AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: fake.url,
        AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'compat-key',
      },
      providers: { openai: { apiKey: 'sk-test', baseURL: fake.url } },
    });
  });
  after(() => fake.close());

  it('generates text, sending the prompt, the model id and the API key', async () => {
    fake.script({ text: 'Paris.' });
    const result = await catalog
      .resolve('openai-compatible/fake-model')
      .doGenerate(ask('Capital of France?'));
    assert.deepEqual(result.content, [{ type: 'text', text: 'Paris.' }]);
    assert.equal(result.finishReason.unified, 'stop');
    assert.ok((result.usage.inputTokens.total ?? 0) > 0);
    const sent = fake.requests.at(-1);
    assert.equal(sent?.model, 'fake-model');
    assert.deepEqual(sent?.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Capital of France?' },
    ]);
    assert.equal(fake.headers.at(-1)?.authorization, 'Bearer compat-key');
  });

  it('streams text deltas and reports usage, asking the server to include it', async () => {
    fake.script({ text: 'one two three four five', usage: { prompt_tokens: 12, completion_tokens: 5 } });
    const { stream } = await catalog.resolve('openai-compatible/fake-model').doStream(ask('count'));
    const parts = await collect(stream);
    assert.deepEqual(fake.requests.at(-1)?.stream_options, { include_usage: true });
    const deltas = parts.flatMap((p) => (p.type === 'text-delta' ? [p.delta] : []));
    assert.ok(deltas.length >= 3, `several deltas, got ${deltas.length}`);
    assert.equal(deltas.join(''), 'one two three four five');
    const finish = parts.at(-1);
    assert.ok(finish?.type === 'finish');
    assert.equal(finish.usage.inputTokens.total, 12);
    assert.equal(finish.usage.outputTokens.total, 5);
    assert.equal(finish.finishReason.unified, 'stop');
  });

  it('parses a tool call into a tool-call part with the right name and JSON input', async () => {
    fake.script({ toolCalls: [{ name: 'calculator', arguments: { expression: '17*23' } }] });
    const model = catalog.resolve('openai-compatible/fake-model');
    const result = await model.doGenerate(ask('what is 17*23', { tools: [calculator] }));
    const call = result.content.find((c) => c.type === 'tool-call');
    assert.ok(call?.type === 'tool-call');
    assert.equal(call.toolName, 'calculator');
    assert.deepEqual(JSON.parse(call.input), { expression: '17*23' });
    assert.equal(result.finishReason.unified, 'tool-calls');
    assert.equal(fake.requests.at(-1)?.tools?.[0]?.function.name, 'calculator');

    fake.script({ toolCalls: [{ name: 'calculator', arguments: { expression: '2+2' } }] });
    const { stream } = await model.doStream(ask('what is 2+2', { tools: [calculator] }));
    const streamed = (await collect(stream)).find((p) => p.type === 'tool-call');
    assert.ok(streamed?.type === 'tool-call');
    assert.equal(streamed.toolName, 'calculator');
    assert.deepEqual(JSON.parse(streamed.input), { expression: '2+2' });
  });

  it('rejects when the server answers 500', async () => {
    fake.script({ status: 500 });
    await assert.rejects(
      Promise.resolve(catalog.resolve('openai-compatible/fake-model').doGenerate(ask('hi'))),
      (err) => APICallError.isInstance(err) && err.statusCode === 500,
    );
  });

  it(
    'rejects promptly when aborted while the server hangs, and the server sees the disconnect',
    { timeout: 5000 },
    async () => {
      const abortedBefore = fake.aborted;
      const seen = fake.requests.length;
      fake.script({ hang: true });
      const ac = new AbortController();
      const model = catalog.resolve('openai-compatible/fake-model');
      const call = Promise.resolve(model.doGenerate(ask('hi', { abortSignal: ac.signal })));
      while (fake.requests.length === seen) await sleep(5);
      ac.abort();
      await assert.rejects(call, (err) => err === ac.signal.reason);
      while (fake.aborted === abortedBefore) await sleep(5);
    },
  );

  it('talks to an OpenAI-compatible server through the openai provider and its baseURL', async () => {
    fake.script({ text: 'via openai' });
    const model = catalog.resolve('openai/gpt-4o-mini');
    const result = await model.doGenerate(ask('hi'));
    assert.deepEqual(result.content, [{ type: 'text', text: 'via openai' }]);
    assert.equal(fake.requests.at(-1)?.model, 'gpt-4o-mini');
    assert.equal(fake.headers.at(-1)?.authorization, 'Bearer sk-test');

    fake.script({ text: 'streamed via openai' });
    const parts = await collect((await model.doStream(ask('hi'))).stream);
    const text = parts.flatMap((p) => (p.type === 'text-delta' ? [p.delta] : [])).join('');
    assert.equal(text, 'streamed via openai');
    const finish = parts.at(-1);
    assert.ok(finish?.type === 'finish');
    assert.ok((finish.usage.outputTokens.total ?? 0) > 0);
  });
});

describe('named OpenAI-compatible providers', () => {
  let vllm: FakeOpenAI;
  let ollama: FakeOpenAI;
  before(async () => {
    vllm = await startFakeOpenAI();
    ollama = await startFakeOpenAI();
  });
  after(async () => {
    await vllm.close();
    await ollama.close();
  });

  it('serves <name>/<model-id> from each named server, with its own key and headers', async () => {
    const catalog = new ModelCatalog({
      env: { VLLM_KEY: 'vllm-secret' },
      providers: {
        vllm: { kind: 'openai-compatible', baseURL: vllm.url, apiKeyEnv: 'VLLM_KEY' },
        ollama: { baseURL: ollama.url, headers: { 'x-team': 'search' } },
      },
    });
    vllm.script({ text: 'from vllm' });
    ollama.script({ text: 'from ollama' });
    const a = await catalog.resolve('vllm/meta-llama/Llama-3.1-8B').doGenerate(ask('hi'));
    const b = await catalog.resolve('ollama/qwen3:8b').doGenerate(ask('hi'));
    assert.deepEqual(a.content, [{ type: 'text', text: 'from vllm' }]);
    assert.deepEqual(b.content, [{ type: 'text', text: 'from ollama' }]);
    assert.equal(vllm.requests.at(-1)?.model, 'meta-llama/Llama-3.1-8B');
    assert.equal(vllm.headers.at(-1)?.authorization, 'Bearer vllm-secret');
    assert.equal(ollama.requests.at(-1)?.model, 'qwen3:8b');
    assert.equal(ollama.headers.at(-1)?.authorization, undefined, 'no key configured, none sent');
    assert.equal(ollama.headers.at(-1)?.['x-team'], 'search');
    assert.equal(catalog.resolve('vllm/meta-llama/Llama-3.1-8B').provider, 'vllm.chat');
  });

  it('lists named providers, so definitions naming them pass the check at write', () => {
    const catalog = new ModelCatalog({ env: {}, providers: { vllm: { baseURL: 'http://gpu-1:8000/v1' } } });
    assert.deepEqual(catalog.providers(), ['demo', 'openai-compatible', 'openai', 'anthropic', 'vllm']);
    catalog.check('vllm/llama', 'model');
    assert.throws(
      () => catalog.check('vlm/llama'),
      code('VALIDATION_FAILED', 'known providers: demo', 'vllm'),
    );
  });

  it('refuses a named provider without a baseURL, with an unknown field, a built-in name or two key sources', () => {
    const bad = (providers: unknown, ...mentions: string[]) =>
      assert.throws(
        () => resolveModelCatalogOptions({ env: {}, providers: providers as never }),
        code('VALIDATION_FAILED', ...mentions),
      );
    bad({ vllm: {} }, 'providers.vllm.baseURL is required');
    bad({ vllm: { baseURL: 'nope' } }, 'providers.vllm.baseURL must be an absolute URL');
    bad({ vllm: { baseURL: 'http://x/v1', apiBase: 'x' } }, 'providers.vllm.apiBase is not a known field');
    bad(
      { vllm: { baseURL: 'http://x/v1', kind: 'anthropic' } },
      'providers.vllm.kind must be one of "openai-compatible"',
    );
    bad({ demo: { baseURL: 'http://x/v1' } }, 'providers.demo is a built-in provider');
    bad({ 'My Server': { baseURL: 'http://x/v1' } }, 'providers.My Server must be a provider name');
    bad(
      { vllm: { baseURL: 'http://x/v1', apiKey: 'k', apiKeyEnv: 'K' } },
      'providers.vllm.apiKeyEnv cannot be given with apiKey',
    );
    bad(
      { vllm: { baseURL: 'http://x/v1', apiKeyEnv: 'not a name' } },
      'providers.vllm.apiKeyEnv must be an environment variable name',
    );
    bad(
      { vllm: { baseURL: 'http://x/v1', structuredOutputs: 'yes' } },
      'providers.vllm.structuredOutputs must be a boolean',
    );
    bad({ vllm: 'http://x/v1' }, 'providers.vllm must be an object');
  });

  it('reads a key from the variable apiKeyEnv names; unset, the provider fails activation naming it', () => {
    const o = resolveModelCatalogOptions({
      env: { OPENAI_API_KEY: 'usual', PROD_OPENAI_KEY: 'prod' },
      providers: { openai: { apiKeyEnv: 'PROD_OPENAI_KEY' } },
    });
    assert.equal(o.providers.openai.apiKey, 'prod');
    assert.equal(o.providers.openai.apiKeyEnv, 'PROD_OPENAI_KEY');
    const catalog = new ModelCatalog({
      env: {},
      providers: { vllm: { baseURL: vllm.url, apiKeyEnv: 'VLLM_KEY' } },
    });
    assert.throws(
      () => catalog.resolve('vllm/x'),
      code('PROVIDER_NOT_CONFIGURED', 'VLLM_KEY', 'providers.vllm.apiKeyEnv'),
    );
  });

  it('describes the configured providers and where their keys come from, never a key', () => {
    const catalog = new ModelCatalog({
      env: { OPENAI_API_KEY: 'sk-secret-openai', VLLM_KEY: 'sk-secret-vllm' },
      providers: {
        vllm: { baseURL: 'http://gpu-1:8000/v1', apiKeyEnv: 'VLLM_KEY' },
        local: { baseURL: 'http://localhost:11434/v1' },
      },
      custom: { mock: stub },
    });
    const described = catalog.describeProviders();
    assert.deepEqual(described, [
      { name: 'demo', kind: 'demo' },
      {
        name: 'openai',
        kind: 'openai',
        baseURL: 'https://api.openai.com/v1',
        keySet: true,
        keyEnv: 'OPENAI_API_KEY',
      },
      {
        name: 'vllm',
        kind: 'openai-compatible',
        baseURL: 'http://gpu-1:8000/v1',
        keySet: true,
        keyEnv: 'VLLM_KEY',
      },
      { name: 'local', kind: 'openai-compatible', baseURL: 'http://localhost:11434/v1', keySet: false },
      { name: 'mock', kind: 'custom' },
    ]);
    assert.ok(!JSON.stringify(described).includes('sk-secret'));
  });

  const person: JSONSchema7 = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name', 'age'],
    additionalProperties: false,
  };

  it('sends a json_schema response format as json_schema, or as json_object when structuredOutputs is off', async () => {
    const catalog = new ModelCatalog({
      env: {},
      providers: {
        vllm: { baseURL: vllm.url },
        plain: { baseURL: vllm.url, structuredOutputs: false },
        'openai-compatible': { baseURL: vllm.url },
      },
    });
    const format = { type: 'json' as const, name: 'person', schema: person };
    for (const provider of ['vllm', 'openai-compatible']) {
      vllm.script({ text: '{"name":"Ada","age":36}' });
      await catalog.resolve(`${provider}/m`).doGenerate(ask('who?', { responseFormat: format }));
      assert.deepEqual(
        vllm.requests.at(-1)?.response_format,
        { type: 'json_schema', json_schema: { schema: person, strict: true, name: 'person' } },
        provider,
      );
    }
    vllm.script({ text: '{"name":"Ada","age":36}' });
    await catalog.resolve('plain/m').doGenerate(ask('who?', { responseFormat: format }));
    assert.deepEqual(vllm.requests.at(-1)?.response_format, { type: 'json_object' });
  });

  it('carries a json_schema response_format of /v1/chat/completions intact to the named server of an agent', async () => {
    const pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      models: { env: {}, providers: { vllm: { baseURL: vllm.url } } },
    });
    const app = await buildServer(pool);
    try {
      await pool.agents.create('default', { name: 'extractor', model: 'vllm/qwen2.5-7b' });
      vllm.script({ text: '{"name":"Ada","age":36}' });
      const res = await app.inject({
        method: 'POST',
        url: '/v1/chat/completions',
        payload: {
          model: 'extractor',
          messages: [{ role: 'user', content: 'Ada is 36.' }],
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'person', description: 'A person', schema: person },
          },
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      const sent = vllm.requests.at(-1);
      assert.equal(sent?.model, 'qwen2.5-7b');
      assert.deepEqual(sent?.response_format, {
        type: 'json_schema',
        json_schema: { schema: person, strict: true, name: 'person', description: 'A person' },
      });
      const body = JSON.parse(res.body) as { choices: Array<{ message: { content: string } }> };
      assert.deepEqual(JSON.parse(body.choices[0]?.message.content ?? ''), { name: 'Ada', age: 36 });
    } finally {
      await app.close();
      await pool.close();
    }
  });
});
