/**
 * The option families in the server configuration: every `createAgentPool()` and `buildServer()`
 * option an operator tunes is a config-file key, checked by the module that owns it; the common
 * ones also have a variable, which wins over the file key by key; and `--print-config` says where
 * each value came from.
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_TTL_SWEEP_INTERVAL_MS } from '../../src/agent-pool.ts';
import { BODY_LIMIT_DEFAULT, TTL_SWEEP_INTERVAL_MS_DEFAULT } from '../../src/cli/config-families.ts';
import { explainServerConfig, resolveServerConfig } from '../../src/cli/config.ts';
import { effectiveSettings, formatEffectiveSettings } from '../../src/cli/effective-config.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { resolveServerOptions } from '../../src/server/app.ts';

const PATH = '/etc/agentpool/agentpool.yaml';
const file = (values: unknown) => ({ path: PATH, values });

/** Asserts a VALIDATION_FAILED error whose message is `message` (exactly, or matching) and whose details hold `details`. */
function rejects(fn: () => unknown, message: string | RegExp, details: Record<string, unknown> = {}): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), `expected VALIDATION_FAILED, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    for (const [key, value] of Object.entries(details)) assert.equal(err.details[key], value, key);
    return true;
  });
}

describe('server configuration: option families from the config file', () => {
  it('takes every family an operator tunes from the config file, paths relative to the file', () => {
    const values = {
      bodyLimit: 2048,
      http: { maxJsonDepth: 16, maxConnectionsPerIp: 0 },
      pool: {
        maxActive: 5,
        policy: 'lru',
        maxIdleMs: 0,
        health: { intervalMs: 5000, eventLoopDelayMs: { overloaded: 2000 }, memoryLimitBytes: 2 ** 30 },
      },
      runs: { historyLimit: 50, cachedThreads: 10 },
      ttlSweepIntervalMs: 0,
      tools: { baseDir: 'tools', maxModules: 10, builtins: { fetchAllowlist: ['api.example.com'] } },
      models: {
        maxCachedModels: 100,
        providers: {
          vllm: { kind: 'openai-compatible', baseURL: 'http://gpu-1:8000/v1', apiKeyEnv: 'VLLM_KEY' },
          ollama: { baseURL: 'http://localhost:11434/v1', structuredOutputs: false },
        },
      },
      flags: { beta: { strategy: 'percentage', percent: 10 } },
      metrics: { maxAgentSeries: 10 },
      liveFigures: { bucketMs: 5000, buckets: 120 },
      agents: { lastUsedFlushIntervalMs: 1000 },
    };
    const config = resolveServerConfig({ file: file(values) });
    assert.equal(config.bodyLimit, 2048);
    assert.deepEqual(config.http, values.http);
    assert.deepEqual(config.pool, values.pool);
    assert.deepEqual(config.runs, values.runs);
    assert.equal(config.ttlSweepIntervalMs, 0);
    assert.deepEqual(config.tools, { ...values.tools, baseDir: resolve('/etc/agentpool/tools') });
    assert.deepEqual(config.models, values.models);
    assert.deepEqual(config.flags, values.flags);
    assert.deepEqual(config.metrics, values.metrics);
    assert.deepEqual(config.liveFigures, values.liveFigures);
    assert.deepEqual(config.agents, values.agents);
  });

  it('lets a variable win over the file for its key only, the rest of the family staying', () => {
    const config = resolveServerConfig({
      env: {
        AGENTPOOL_MAX_ACTIVE: '7',
        AGENTPOOL_MAX_BYTES: '1048576',
        AGENTPOOL_MAX_IDLE_MS: '0',
        AGENTPOOL_ACQUIRE_TIMEOUT_MS: '250',
        AGENTPOOL_TOOLS_BASE_DIR: 'my-tools',
        AGENTPOOL_FETCH_ALLOWLIST: 'api.example.com, *.internal.example.com',
        AGENTPOOL_BODY_LIMIT: '4096',
        AGENTPOOL_MAX_CONNECTIONS_PER_IP: '0',
        AGENTPOOL_MODEL_TIMEOUT_MS: '120000',
      },
      file: file({
        pool: { maxActive: 100, policy: 'lru' },
        tools: { baseDir: 'tools', maxModules: 3 },
        resilience: { retry: { maxAttempts: 2 } },
      }),
    });
    assert.deepEqual(config.pool, {
      maxActive: 7,
      policy: 'lru',
      maxBytes: 1_048_576,
      maxIdleMs: 0,
      acquireTimeoutMs: 250,
    });
    // A variable's relative path is the working directory's, as for a flag.
    assert.deepEqual(config.tools, {
      baseDir: 'my-tools',
      maxModules: 3,
      builtins: { fetchAllowlist: ['api.example.com', '*.internal.example.com'] },
    });
    assert.equal(config.bodyLimit, 4096);
    assert.deepEqual(config.http, { maxConnectionsPerIp: 0 });
    assert.deepEqual(config.resilience, { retry: { maxAttempts: 2 }, timeoutMs: 120_000 });
    assert.deepEqual(resolveServerConfig({ env: { AGENTPOOL_POOL_POLICY: 'lru' } }).pool, { policy: 'lru' });
  });

  it('lets a provider variable win over the file, leaving the model catalog to read it', () => {
    const explained = explainServerConfig({
      env: { OPENAI_API_KEY: 'sk-from-env', OPENAI_BASE_URL: 'http://proxy.local/v1' },
      file: file({
        models: { providers: { openai: { apiKey: 'sk-from-file', baseURL: 'http://file.local/v1' } } },
      }),
    });
    assert.deepEqual(explained.config.models, { providers: { openai: {} } });
    assert.deepEqual(explained.origins.get('models.providers.openai.apiKey'), {
      source: 'env',
      label: 'OPENAI_API_KEY',
    });
    const fromFile = resolveServerConfig({
      file: file({ models: { providers: { openai: { apiKey: 'sk-file' } } } }),
    });
    assert.deepEqual(fromFile.models, { providers: { openai: { apiKey: 'sk-file' } } });
  });

  it('names the key and the file of a bad nested value, or the variable that set it', () => {
    rejects(
      () => resolveServerConfig({ file: file({ pool: { maxActive: -3 } }) }),
      `pool.maxActive in config file ${PATH} must be a positive integer, got -3`,
      { field: 'pool.maxActive', source: 'file', key: 'pool', path: PATH },
    );
    rejects(
      () =>
        resolveServerConfig({ env: { AGENTPOOL_MAX_ACTIVE: '0' }, file: file({ pool: { maxActive: 3 } }) }),
      'AGENTPOOL_MAX_ACTIVE must be a positive integer, got 0',
      { field: 'pool.maxActive', source: 'env' },
    );
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_MAX_ACTIVE: 'many' } }),
      'AGENTPOOL_MAX_ACTIVE must be a positive integer, got "many"',
    );
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_POOL_POLICY: 'fifo' } }),
      'AGENTPOOL_POOL_POLICY must be one of "lru", "tinylfu", got "fifo"',
    );
    rejects(
      () =>
        resolveServerConfig({ env: { AGENTPOOL_FETCH_ALLOWLIST: 'api.example.com,https://x.example.com' } }),
      /^AGENTPOOL_FETCH_ALLOWLIST \(tools\.builtins\.fetchAllowlist\[1\]\) must be a host name like "api\.example\.com"/,
      { field: 'tools.builtins.fetchAllowlist[1]', source: 'env' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ http: { maxJsonDepth: 0 } }) }),
      `http.maxJsonDepth in config file ${PATH} must be an integer from 1 to 10000, got 0`,
      { field: 'http.maxJsonDepth', key: 'http' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ bodyLimit: '1mb' }) }),
      `bodyLimit in config file ${PATH} must be a positive integer, got "1mb"`,
    );
    rejects(
      () =>
        resolveServerConfig({
          file: file({ models: { providers: { vllm: { kind: 'openai-compatible' } } } }),
        }),
      `models.providers.vllm.baseURL in config file ${PATH} is required (the server's /v1 URL)`,
      { field: 'models.providers.vllm.baseURL' },
    );
    rejects(
      () => resolveServerConfig({ env: { OPENAI_BASE_URL: 'not a url' } }),
      'OPENAI_BASE_URL must be an absolute URL, got "not a url"',
      { source: 'env' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ runs: { historyLimit: 20_000 } }) }),
      `runs.historyLimit in config file ${PATH} must be an integer from 1 to 10000, got 20000`,
    );
    rejects(
      () =>
        resolveServerConfig({ file: file({ flags: { beta: { strategy: 'percentage', percent: 120 } } }) }),
      /^flags\.beta\.percent in config file \/etc\/agentpool\/agentpool\.yaml must be/,
    );
    rejects(
      () => resolveServerConfig({ file: file({ tools: { baseDir: '' } }) }),
      `tools.baseDir in config file ${PATH} must be a non-empty directory path`,
    );
  });

  it('refuses unknown keys at every level, and those only code can give, naming the known ones', () => {
    rejects(
      () => resolveServerConfig({ file: file({ pool: { maxActiv: 5 } }) }),
      `config file ${PATH} has an unknown key "pool.maxActiv" (known under pool: maxActive, maxBytes, policy, acquireTimeoutMs, maxWaiting, maxIdleMs, idleSweepIntervalMs, recovery, preload, health, checkpoint, autoscaling, tiers)`,
      { field: 'pool.maxActiv', source: 'file' },
    );
    for (const [values, key] of [
      [{ tools: { clock: {} } }, 'tools.clock'],
      [{ tools: { tools: [] } }, 'tools.tools'],
      [{ tools: { builtins: { fetch: 'x' } } }, 'tools.builtins.fetch'],
      [{ models: { custom: {} } }, 'models.custom'],
      [{ models: { env: {} } }, 'models.env'],
      [{ models: { providers: { openai: { headers: {} } } } }, 'models.providers.openai.headers'],
      [{ resilience: { retry: { attempts: 2 } } }, 'resilience.retry.attempts'],
      [{ governance: { defaults: { quotas: { maxRuns: 1 } } } }, 'governance.defaults.quotas.maxRuns'],
      [{ http: { timeout: 1 } }, 'http.timeout'],
      [{ pool: { health: { readings: {} } } }, 'pool.health.readings'],
      [{ pool: { health: { heapRatio: { high: 1 } } } }, 'pool.health.heapRatio.high'],
    ] as const) {
      rejects(
        () => resolveServerConfig({ file: file(values) }),
        new RegExp(`has an unknown key "${key.replace(/\./g, '\\.')}"`),
      );
    }
    rejects(
      () => resolveServerConfig({ file: file({ pool: 5 }) }),
      /^pool in config file \/etc\/agentpool\/agentpool\.yaml must be an object of settings \(maxActive, /,
    );
  });

  it('keeps the defaults of the settings without a module of their own in step with the code', () => {
    assert.equal(BODY_LIMIT_DEFAULT, resolveServerOptions({}).bodyLimit);
    assert.equal(TTL_SWEEP_INTERVAL_MS_DEFAULT, DEFAULT_TTL_SWEEP_INTERVAL_MS);
  });
});

describe('server configuration: where each value came from', () => {
  const explained = () =>
    explainServerConfig({
      flags: { port: '9000' },
      env: {
        AGENTPOOL_MAX_ACTIVE: '5',
        AGENTPOOL_ADMIN_KEY: 'admin-key-of-24-chars-xx',
        OPENAI_API_KEY: 'sk-secret-openai',
        VLLM_KEY: 'sk-secret-vllm',
      },
      file: file({
        port: 8000,
        pool: { maxActive: 50, policy: 'lru' },
        models: {
          providers: {
            vllm: {
              baseURL: 'http://gpu-1:8000/v1',
              apiKeyEnv: 'VLLM_KEY',
              headers: { authorization: 'Bearer x' },
            },
          },
        },
        prices: { 'vllm/*': { inputPerMillion: 0.1, outputPerMillion: 0.2 } },
      }),
    });

  it('lists every setting, defaults included, with its source: flag, variable, config file or default', () => {
    const rows = new Map(effectiveSettings(explained(), {}).map((row) => [row.key, row]));
    assert.deepEqual(rows.get('port'), { key: 'port', value: 9000, source: 'flag', from: '--port' });
    assert.deepEqual(rows.get('pool.maxActive'), {
      key: 'pool.maxActive',
      value: 5,
      source: 'env',
      from: 'AGENTPOOL_MAX_ACTIVE',
    });
    assert.deepEqual(rows.get('pool.policy'), {
      key: 'pool.policy',
      value: 'lru',
      source: 'file',
      from: `config file ${PATH}`,
    });
    assert.deepEqual(rows.get('pool.maxBytes'), {
      key: 'pool.maxBytes',
      value: 268_435_456,
      source: 'default',
    });
    assert.deepEqual(rows.get('models.providers.vllm.baseURL')?.value, 'http://gpu-1:8000/v1');
    assert.deepEqual(rows.get('prices["vllm/*"]')?.value, { inputPerMillion: 0.1, outputPerMillion: 0.2 });
    assert.equal(rows.get('models.providers.vllm.structuredOutputs')?.value, true);
    assert.deepEqual(rows.get('cors.origins'), {
      key: 'cors.origins',
      value: null,
      source: 'default',
      defaultText: 'none: CORS off',
    });
    assert.equal(rows.get('governance.defaults.budgets.dailyUsd')?.value, null);
    for (const key of [
      'host',
      'http.maxJsonDepth',
      'runs.historyLimit',
      'tools.baseDir',
      'resilience.timeoutMs',
    ]) {
      assert.equal(rows.get(key)?.source, 'default', key);
    }
  });

  it('shows whether a secret is set and where from, never its value', () => {
    const env = { OPENAI_API_KEY: 'sk-secret-openai', VLLM_KEY: 'sk-secret-vllm' };
    const rows = new Map(effectiveSettings(explained(), env).map((row) => [row.key, row]));
    assert.deepEqual(rows.get('adminKey'), {
      key: 'adminKey',
      set: true,
      source: 'env',
      from: 'AGENTPOOL_ADMIN_KEY',
    });
    assert.deepEqual(rows.get('metricsToken'), {
      key: 'metricsToken',
      set: false,
      source: 'default',
      defaultText: 'none',
    });
    assert.deepEqual(rows.get('models.providers.openai.apiKey'), {
      key: 'models.providers.openai.apiKey',
      set: true,
      source: 'env',
      from: 'OPENAI_API_KEY',
    });
    assert.deepEqual(rows.get('models.providers.vllm.apiKey'), {
      key: 'models.providers.vllm.apiKey',
      set: true,
      source: 'env',
      from: 'VLLM_KEY',
    });
    assert.deepEqual(rows.get('models.providers.vllm.headers')?.value, { authorization: '(hidden)' });
    const text = formatEffectiveSettings(explained(), env).join('\n');
    for (const secret of ['sk-secret', 'admin-key-of', 'Bearer x']) assert.ok(!text.includes(secret), secret);
    assert.match(text, /^adminKey +set +env AGENTPOOL_ADMIN_KEY$/m);
    assert.match(text, /^pool\.maxActive +5 +env AGENTPOOL_MAX_ACTIVE$/m);
    assert.match(text, /^pool\.policy +"lru" +config file \/etc\/agentpool\/agentpool\.yaml$/m);
    assert.match(text, /^port +9000 +--port$/m);
  });
});
