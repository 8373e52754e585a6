/** The server configuration: defaults, precedence of flags, variables and file, and messages. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  CONFIG_FILE_KEYS,
  loadServerConfig,
  resolveServerConfig,
  SERVER_CONFIG_DEFAULTS,
} from '../../src/cli/config.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { tempDir } from '../support/temp-dir.ts';

/** Asserts a VALIDATION_FAILED error whose message matches and whose details name field and source. */
function rejects(fn: () => unknown, message: RegExp, details: Record<string, unknown> = {}): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), `expected VALIDATION_FAILED, got ${String(err)}`);
    assert.match(err.message, message);
    for (const [key, value] of Object.entries(details)) assert.equal(err.details[key], value, key);
    return true;
  });
}

const file = (values: unknown, path = '/etc/agentpool/agentpool.yaml') => ({ path, values });

describe('server configuration', () => {
  const tmp = tempDir();
  after(tmp.cleanup);

  it('pins the defaults', () => {
    assert.deepEqual(resolveServerConfig(), {
      port: 8787,
      host: '127.0.0.1',
      dataDir: './data',
      store: 'sqlite',
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
    });
    assert.deepEqual(resolveServerConfig(), { ...SERVER_CONFIG_DEFAULTS });
    assert.equal('agentsFile' in resolveServerConfig(), false);
  });

  it('takes a flag over a variable over the file over the default', () => {
    const env = { AGENTPOOL_PORT: '2000', AGENTPOOL_HOST: '10.0.0.2' };
    const values = { port: 3000, host: '10.0.0.3', store: 'memory' };
    const config = resolveServerConfig({ flags: { port: '1000' }, env, file: file(values) });
    assert.equal(config.port, 1000); // flag
    assert.equal(config.host, '10.0.0.2'); // variable
    assert.equal(config.store, 'memory'); // file
    assert.equal(config.shutdownTimeoutMs, 10_000); // default
  });

  it('reads every field from its AGENTPOOL_* variable', () => {
    const config = resolveServerConfig({
      env: {
        AGENTPOOL_PORT: '9000',
        AGENTPOOL_HOST: '0.0.0.0',
        AGENTPOOL_DATA_DIR: '/var/lib/agentpool',
        AGENTPOOL_STORE: 'memory',
        AGENTPOOL_AGENTS_FILE: 'agents.json',
        AGENTPOOL_SHUTDOWN_TIMEOUT_MS: '0',
        AGENTPOOL_LOG_LEVEL: 'debug',
        AGENTPOOL_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      },
    });
    assert.deepEqual(config, {
      port: 9000,
      host: '0.0.0.0',
      dataDir: '/var/lib/agentpool',
      store: 'memory',
      agentsFile: 'agents.json',
      shutdownTimeoutMs: 0,
      logLevel: 'debug',
      cors: { origins: ['https://app.example.com', 'http://localhost:5173'] },
    });
  });

  it('treats an empty variable as unset', () => {
    const config = resolveServerConfig({ env: { AGENTPOOL_PORT: '' }, file: file({ port: 4000 }) });
    assert.equal(config.port, 4000);
  });

  it('takes relative paths in the config file from its directory, others from the working directory', () => {
    const fromFile = resolveServerConfig({ file: file({ dataDir: 'data', agentsFile: 'agents.yaml' }) });
    assert.equal(fromFile.dataDir, resolve('/etc/agentpool/data'));
    assert.equal(fromFile.agentsFile, resolve('/etc/agentpool/agents.yaml'));
    const fromFlag = resolveServerConfig({ flags: { dataDir: 'data' } });
    assert.equal(fromFlag.dataDir, 'data');
  });

  it('names the variable, the flag or the file key of a bad value', () => {
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_PORT: 'abc' } }),
      /^AGENTPOOL_PORT must be an integer from 1 to 65535, got "abc"$/,
      { field: 'port', source: 'env' },
    );
    rejects(
      () => resolveServerConfig({ flags: { port: '70000' } }),
      /^--port must be an integer from 1 to 65535, got "70000"$/,
      { field: 'port', source: 'flag' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ port: '8080' }) }),
      /^port in config file \/etc\/agentpool\/agentpool\.yaml must be an integer from 1 to 65535, got "8080"$/,
      { field: 'port', source: 'file' },
    );
    rejects(
      () => resolveServerConfig({ flags: { store: 'redis' } }),
      /^--store must be one of "sqlite", "memory", "postgres", got "redis"$/,
      { field: 'store' },
    );
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_HOST: ' ' } }),
      /^AGENTPOOL_HOST must be a non-empty string/,
    );
    rejects(
      () => resolveServerConfig({ file: file({ shutdownTimeoutMs: -1 }) }),
      /^shutdownTimeoutMs in config file .* must be an integer from 0 to 3600000, got -1$/,
    );
    rejects(() => resolveServerConfig({ flags: { port: '1.5' } }), /^--port must be an integer/);
  });

  it('checks only the value that wins', () => {
    // A bad variable shadowed by a good flag is not used, so it does not fail the start.
    assert.equal(resolveServerConfig({ flags: { port: '1234' }, env: { AGENTPOOL_PORT: 'abc' } }).port, 1234);
  });

  it('rejects an unknown key of the config file, naming it', () => {
    rejects(
      () => resolveServerConfig({ file: file({ port: 8080, prot: 8081 }) }),
      /config file \/etc\/agentpool\/agentpool\.yaml has an unknown key "prot" \(known: port, host/,
      { field: 'prot', source: 'file' },
    );
    rejects(() => resolveServerConfig({ file: file(['port']) }), /must hold an object of settings/);
    assert.deepEqual(CONFIG_FILE_KEYS, [
      'port',
      'host',
      'dataDir',
      'store',
      'databaseUrl',
      'redisUrl',
      'redisPrefix',
      'nodeId',
      'nodeAddress',
      'agentsFile',
      'shutdownTimeoutMs',
      'logLevel',
      'adminKey',
      'metricsToken',
      'bodyLimit',
      'cors',
      'http',
      'pool',
      'runs',
      'ttlSweepIntervalMs',
      'retention',
      'tools',
      'models',
      'resilience',
      'prices',
      'governance',
      'flags',
      'metrics',
      'liveFigures',
      'agents',
      'sqlite',
      'postgres',
      'cluster',
    ]);
  });

  it('takes the PostgreSQL and cluster tuning from the config file, naming a bad field', () => {
    const cluster = { membership: { heartbeatMs: 500, deadAfterMs: 3000 }, queue: { lockDurationMs: 4000 } };
    const config = resolveServerConfig({
      file: file({ store: 'postgres', postgres: { maxConnections: 4 }, cluster }),
    });
    assert.deepEqual(config.cluster, cluster);
    assert.deepEqual(config.postgres, { maxConnections: 4 });
    rejects(
      () => resolveServerConfig({ file: file({ cluster: { membership: { deadAfterMs: 'soon' } } }) }),
      /^cluster\.membership\.deadAfterMs in config file \/etc\/agentpool\/agentpool\.yaml must be/,
      { field: 'cluster.membership.deadAfterMs', source: 'file' },
    );
    rejects(() => resolveServerConfig({ file: file({ postgres: { maxConections: 4 } }) }), /maxConections/, {
      source: 'file',
    });
    rejects(
      () => resolveServerConfig({ file: file({ cluster: { nodeId: 'a' } }) }),
      /has an unknown key "cluster\.nodeId"/,
      { source: 'file' },
    );
  });

  it('takes governance defaults, prices and resilience from the config file, checked before start', () => {
    const governance = { defaults: { budgets: { dailyUsd: 5 }, quotas: { runsPerMinute: 60 } } };
    const prices = { 'openai-compatible/m': { inputPerMillion: 1, outputPerMillion: 2 } };
    const resilience = { retry: { maxAttempts: 2 }, models: { 'openai-compatible/m': { timeoutMs: 5000 } } };
    const config = resolveServerConfig({ file: file({ governance, prices, resilience }) });
    assert.deepEqual(config.governance, governance);
    assert.deepEqual(config.prices, prices);
    assert.deepEqual(config.resilience, resilience);
    rejects(
      () => resolveServerConfig({ file: file({ resilience: { retry: { maxAttempts: 0 } } }) }),
      /^resilience\.retry\.maxAttempts in config file \/etc\/agentpool\/agentpool\.yaml must be a positive integer, got 0$/,
      { field: 'resilience.retry.maxAttempts', source: 'file', key: 'resilience' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ governance: { defaults: { budgets: { dailyUsd: -1 } } } }) }),
      /^governance\.defaults\.budgets\.dailyUsd in config file \/etc\/agentpool\/agentpool\.yaml must be/,
      { field: 'governance.defaults.budgets.dailyUsd', source: 'file', key: 'governance' },
    );
    rejects(
      () =>
        resolveServerConfig({
          file: file({ prices: { 'no-slash': { inputPerMillion: 1, outputPerMillion: 1 } } }),
        }),
      /^prices\.no-slash in config file \/etc\/agentpool\/agentpool\.yaml must be "provider\/model-id"/,
      { source: 'file', key: 'prices' },
    );
  });

  it('loads a YAML config file named by --config, or a JSON one named by AGENTPOOL_CONFIG', () => {
    const yamlPath = join(tmp.dir, 'agentpool.yaml');
    writeFileSync(yamlPath, '# settings\nport: 9100\nstore: memory\ndataDir: state\n');
    const fromYaml = loadServerConfig({ config: yamlPath }, {});
    assert.equal(fromYaml.port, 9100);
    assert.equal(fromYaml.store, 'memory');
    assert.equal(fromYaml.dataDir, join(tmp.dir, 'state'));

    const jsonPath = join(tmp.dir, 'agentpool.json');
    writeFileSync(jsonPath, JSON.stringify({ port: 9200 }));
    assert.equal(loadServerConfig({}, { AGENTPOOL_CONFIG: jsonPath }).port, 9200);
    // --config wins over AGENTPOOL_CONFIG, and variables over the file
    assert.equal(loadServerConfig({ config: yamlPath }, { AGENTPOOL_CONFIG: jsonPath }).port, 9100);
    assert.equal(loadServerConfig({ config: yamlPath }, { AGENTPOOL_PORT: '9300' }).port, 9300);
    assert.equal(loadServerConfig({}, {}).port, 8787);
  });

  it('says which config file is missing or unparsable, and who named it', () => {
    rejects(
      () => loadServerConfig({}, { AGENTPOOL_CONFIG: join(tmp.dir, 'missing.yaml') }),
      /^config file \(AGENTPOOL_CONFIG\) .*missing\.yaml does not exist$/,
    );
    const broken = join(tmp.dir, 'broken.json');
    writeFileSync(broken, '{ "port": ');
    rejects(
      () => loadServerConfig({ config: broken }, {}),
      /^config file \(--config\) .*broken\.json is not valid: /,
    );
  });

  it('takes the admin key from AGENTPOOL_ADMIN_KEY or the file, never from a flag, and refuses a short one', () => {
    const key = 'a-long-enough-admin-key';
    assert.equal(resolveServerConfig({ env: { AGENTPOOL_ADMIN_KEY: key } }).adminKey, key);
    assert.equal(resolveServerConfig({ file: { path: '/x.yaml', values: { adminKey: key } } }).adminKey, key);
    assert.equal(resolveServerConfig({ flags: { adminKey: key } as never }).adminKey, undefined);
    assert.equal(resolveServerConfig({}).adminKey, undefined);
    assert.throws(
      () => resolveServerConfig({ env: { AGENTPOOL_ADMIN_KEY: 'short' } }),
      /AGENTPOOL_ADMIN_KEY must be a secret of at least 16 characters/,
    );
  });

  it('takes the metrics token from AGENTPOOL_METRICS_TOKEN or the file, never from a flag, and refuses a short one', () => {
    const token = 'a-long-enough-metrics-token';
    assert.equal(resolveServerConfig({ env: { AGENTPOOL_METRICS_TOKEN: token } }).metricsToken, token);
    assert.equal(
      resolveServerConfig({ file: { path: '/x.yaml', values: { metricsToken: token } } }).metricsToken,
      token,
    );
    assert.equal(resolveServerConfig({ flags: { metricsToken: token } as never }).metricsToken, undefined);
    assert.equal(resolveServerConfig({}).metricsToken, undefined);
    assert.throws(
      () => resolveServerConfig({ env: { AGENTPOOL_METRICS_TOKEN: 'short' } }),
      /AGENTPOOL_METRICS_TOKEN must be a secret of at least 16 characters/,
    );
    assert.throws(
      () => resolveServerConfig({ file: { path: '/x.yaml', values: { metricsToken: 'short' } } }),
      /metricsToken in config file \/x\.yaml must be a secret of at least 16 characters/,
    );
  });
});

describe('server configuration: logLevel and cors', () => {
  it('takes the log level from --log-level, AGENTPOOL_LOG_LEVEL or logLevel in the file', () => {
    assert.equal(
      resolveServerConfig({ flags: { logLevel: 'warn' }, env: { AGENTPOOL_LOG_LEVEL: 'debug' } }).logLevel,
      'warn',
    );
    assert.equal(resolveServerConfig({ env: { AGENTPOOL_LOG_LEVEL: 'debug' } }).logLevel, 'debug');
    assert.equal(resolveServerConfig({ file: file({ logLevel: 'silent' }) }).logLevel, 'silent');
  });

  it('rejects an unknown log level, naming its source', () => {
    rejects(
      () => resolveServerConfig({ flags: { logLevel: 'verbose' } }),
      /^--log-level must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"$/,
      { field: 'logLevel', source: 'flag' },
    );
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_LOG_LEVEL: 'INFO' } }),
      /^AGENTPOOL_LOG_LEVEL must be one of/,
      {
        field: 'logLevel',
        source: 'env',
      },
    );
    rejects(
      () => resolveServerConfig({ file: file({ logLevel: 3 }) }),
      /^logLevel in config file .* must be one of/,
      {
        source: 'file',
      },
    );
  });

  it('takes cors from the file, or from AGENTPOOL_CORS_ORIGINS over it; absent means off', () => {
    assert.equal('cors' in resolveServerConfig(), false);
    const origins = ['https://app.example.com'];
    assert.deepEqual(resolveServerConfig({ file: file({ cors: { origins } }) }).cors, { origins });
    assert.deepEqual(
      resolveServerConfig({ env: { AGENTPOOL_CORS_ORIGINS: '*' }, file: file({ cors: { origins } }) }).cors,
      { origins: ['*'] },
    );
    assert.equal('cors' in resolveServerConfig({ env: { AGENTPOOL_CORS_ORIGINS: '' } }), false);
  });

  it('rejects a bad origin, naming the variable or the file key', () => {
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_CORS_ORIGINS: 'https://app.example.com/,x' } }),
      /^AGENTPOOL_CORS_ORIGINS \(cors\.origins\[0\]\) must be written as browsers send it: "https:\/\/app\.example\.com", got "https:\/\/app\.example\.com\/"$/,
      { field: 'cors.origins[0]', source: 'env' },
    );
    rejects(
      () => resolveServerConfig({ env: { AGENTPOOL_CORS_ORIGINS: '*,https://a.example' } }),
      /^AGENTPOOL_CORS_ORIGINS: "\*" allows every origin, list it alone$/,
    );
    rejects(
      () => resolveServerConfig({ file: file({ cors: { origins: ['https://a.example', 'a.example'] } }) }),
      /^cors\.origins\[1\] in config file \/etc\/agentpool\/agentpool\.yaml must be an origin like/,
      { field: 'cors.origins[1]', source: 'file' },
    );
    rejects(
      () => resolveServerConfig({ file: file({ cors: ['https://a.example'] }) }),
      /^cors in config file \/etc\/agentpool\/agentpool\.yaml must be an object of settings \(origins\)$/,
    );
  });
});
