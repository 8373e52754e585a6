/**
 * `agentpool serve` and `apply` configured from a config file, as real processes: the pool's
 * bounds and eviction policy, the tool base directory and fetch allowlist, and two named
 * OpenAI-compatible providers (each a fake server over real HTTP) reach the running server;
 * `--print-config` shows the configuration in force and where each value came from, without
 * opening the store.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { type CliChild, cli, fakeServer, freePort, spawnCli } from '../support/cli-process.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { tempDir } from '../support/temp-dir.ts';

const TOOL_MODULE = resolve(import.meta.dirname, '../../src/tools/tool.ts');

/** Polls `url` until it answers 200, the child exits, or 20 s pass. */
async function waitFor(url: string, child: CliChild): Promise<void> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !exited) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  assert.fail(`${url} never answered; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
}

interface EffectiveRow {
  key: string;
  value?: unknown;
  set?: boolean;
  source: string;
  from?: string;
}

describe('agentpool serve --print-config', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const config = join(tmp.dir, 'agentpool.yaml');
  const dataDir = join(tmp.dir, 'data');
  writeFileSync(
    config,
    [
      'port: 8000',
      'host: 0.0.0.0',
      'pool:',
      '  maxActive: 50',
      '  policy: lru',
      'tools:',
      '  baseDir: tools',
      'models:',
      '  providers:',
      '    vllm: { baseURL: "http://gpu-1:8000/v1", apiKeyEnv: VLLM_KEY }',
      '',
    ].join('\n'),
  );
  const env = {
    AGENTPOOL_MAX_ACTIVE: '5',
    AGENTPOOL_DATA_DIR: dataDir,
    AGENTPOOL_ADMIN_KEY: 'admin-key-never-printed',
    VLLM_KEY: 'vllm-key-never-printed',
  };

  it('prints every setting with its value and source (flag, variable, file, default), exits 0, opens nothing', async () => {
    const result = await cli(['serve', '--config', config, '--port', '9001', '--print-config'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const out = result.stdout;
    assert.match(
      out,
      /^# agentpool serve: effective configuration \(flags > environment variables > config file .*agentpool\.yaml > defaults\)$/m,
    );
    assert.match(out, /^port +9001 +--port$/m);
    assert.match(out, /^host +"0\.0\.0\.0" +config file .*agentpool\.yaml$/m);
    assert.match(out, /^pool\.maxActive +5 +env AGENTPOOL_MAX_ACTIVE$/m);
    assert.match(out, /^pool\.policy +"lru" +config file /m);
    assert.match(out, /^pool\.maxBytes +268435456 +default$/m);
    assert.ok(out.includes(`tools.baseDir`) && out.includes(JSON.stringify(join(tmp.dir, 'tools'))), out);
    assert.match(out, /^models\.providers\.vllm\.baseURL +"http:\/\/gpu-1:8000\/v1" +config file /m);
    assert.match(out, /^models\.providers\.vllm\.apiKey +set +env VLLM_KEY$/m);
    assert.match(out, /^adminKey +set +env AGENTPOOL_ADMIN_KEY$/m);
    assert.match(out, /^resilience\.breaker\.threshold +5 +default$/m);
    assert.ok(!out.includes('never-printed'), 'no secret is printed');
    assert.equal(existsSync(dataDir), false, 'the store was not opened');
  });

  it('prints the same as JSON with --json', async () => {
    const result = await cli(['serve', '--config', config, '--print-config', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const doc = JSON.parse(result.stdout) as { configFile: string; settings: EffectiveRow[] };
    assert.equal(doc.configFile, config);
    const rows = new Map(doc.settings.map((row) => [row.key, row]));
    assert.deepEqual(rows.get('port'), {
      key: 'port',
      value: 8000,
      source: 'file',
      from: `config file ${config}`,
    });
    assert.deepEqual(rows.get('pool.maxActive'), {
      key: 'pool.maxActive',
      value: 5,
      source: 'env',
      from: 'AGENTPOOL_MAX_ACTIVE',
    });
    assert.deepEqual(rows.get('adminKey'), {
      key: 'adminKey',
      set: true,
      source: 'env',
      from: 'AGENTPOOL_ADMIN_KEY',
    });
    assert.deepEqual(rows.get('runs.historyLimit'), {
      key: 'runs.historyLimit',
      value: 200,
      source: 'default',
    });
    assert.ok(!result.stdout.includes('never-printed'));
  });

  it('exits 1 naming the variable, or the key and file, of a bad value; 2 for a bad flag or --json alone', async () => {
    const badEnv = await cli(['serve', '--config', config, '--print-config'], {
      ...env,
      AGENTPOOL_MAX_ACTIVE: '0',
    });
    assert.equal(badEnv.code, 1);
    assert.equal(badEnv.stderr, 'error: AGENTPOOL_MAX_ACTIVE must be a positive integer, got 0\n');

    const broken = join(tmp.dir, 'broken.yaml');
    writeFileSync(broken, 'pool:\n  maxActive: -3\n');
    const badFile = await cli(['serve', '--config', broken, '--print-config'], {});
    assert.equal(badFile.code, 1);
    assert.equal(
      badFile.stderr,
      `error: pool.maxActive in config file ${broken} must be a positive integer, got -3\n`,
    );

    const typo = join(tmp.dir, 'typo.yaml');
    writeFileSync(typo, 'tools:\n  fetchAllowlist: [api.example.com]\n');
    const unknown = await cli(['serve', '--config', typo, '--print-config'], {});
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /^error: config file .*typo\.yaml has an unknown key "tools\.fetchAllowlist" \(known under tools: baseDir, allowOutsideBaseDir, maxModules, reload, maxModuleVersions, maxReloads, defaultTimeoutMs, builtins, mcp\)\n$/,
    );

    const badFlag = await cli(['serve', '--port', 'abc', '--print-config'], {});
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /^error: --port must be an integer from 1 to 65535, got "abc"\n$/);

    const jsonAlone = await cli(['serve', '--json'], {});
    assert.equal(jsonAlone.code, 2);
    assert.match(jsonAlone.stderr, /--json goes with --print-config/);
  });
});

describe('agentpool serve and apply from a config file', () => {
  const tmp = tempDir();
  const children: CliChild[] = [];
  let vllm: FakeOpenAI;
  let ollama: FakeOpenAI;
  let site: Awaited<ReturnType<typeof fakeServer>>;
  const config = join(tmp.dir, 'agentpool.yaml');
  const agentsFile = join(tmp.dir, 'agents.yaml');

  before(async () => {
    vllm = await startFakeOpenAI();
    ollama = await startFakeOpenAI();
    site = await fakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('the page of the allowed host');
    });
    mkdirSync(join(tmp.dir, 'tools'));
    writeFileSync(
      join(tmp.dir, 'tools', 'shout.ts'),
      `import { defineTool } from ${JSON.stringify(TOOL_MODULE)};\n` +
        'export const shout = defineTool({ name: "shout", description: "Upper-cases text.",\n' +
        '  inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },\n' +
        '  execute: ({ text }) => String(text).toUpperCase() });\n',
    );
    writeFileSync(
      agentsFile,
      [
        'agents:',
        '  - name: big',
        '    model: vllm/llama-3.1-70b',
        '    tools: [module:./shout.ts, fetch_url]',
        '  - name: small',
        '    model: ollama/qwen3:8b',
        '',
      ].join('\n'),
    );
    writeFileSync(
      config,
      [
        'store: memory',
        'bodyLimit: 4096',
        'agentsFile: agents.yaml',
        'pool:',
        '  maxActive: 3',
        '  policy: lru',
        'tools:',
        '  baseDir: tools',
        '  builtins:',
        '    fetchAllowlist: [127.0.0.1]',
        'models:',
        '  providers:',
        `    vllm: { kind: openai-compatible, baseURL: "${vllm.url}", apiKeyEnv: VLLM_KEY }`,
        `    ollama: { baseURL: "${ollama.url}" }`,
        '    lmstudio: { baseURL: "http://127.0.0.1:9/v1", apiKeyEnv: LMSTUDIO_KEY }',
        'prices:',
        '  "vllm/*": { inputPerMillion: 1000, outputPerMillion: 1000 }',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    await vllm.close();
    await ollama.close();
    await site.close();
    tmp.cleanup();
  });

  it('serves with the pool, tools and two named providers of the file; runs reach their servers', async () => {
    const port = await freePort();
    const child = spawnCli(['serve', '--config', config, '--port', String(port)], {
      VLLM_KEY: 'vllm-secret-key',
    });
    children.push(child);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/healthz`, child);

    // The banner names the providers configured, where they send requests and whose key; never the key.
    assert.ok(
      child
        .stdout()
        .includes(
          `  models:    demo, vllm → ${vllm.url} (VLLM_KEY), ollama → ${ollama.url}, lmstudio → http://127.0.0.1:9/v1 (LMSTUDIO_KEY is not set)\n`,
        ),
      child.stdout(),
    );
    assert.match(
      child.stdout(),
      /"provider":"lmstudio","env":"LMSTUDIO_KEY".*"msg":"the variable a model provider reads its key from is not set/,
    );

    // bodyLimit reaches the HTTP server.
    const tooBig = await fetch(`${base}/v1/agents/small/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'x'.repeat(5000) }),
    });
    assert.equal(tooBig.status, 413);
    assert.match(child.stdout(), /created {4}default\/big {2}v1/);

    const stats = (await (await fetch(`${base}/v1/pool/stats`)).json()) as {
      maxActive: number;
      policy: { name: string };
    };
    assert.equal(stats.maxActive, 3);
    assert.equal(stats.policy.name, 'lru');

    // big: one step calling the module tool (from tools.baseDir) and fetch_url (allowlisted), then an answer.
    vllm.script(
      {
        toolCalls: [
          { name: 'shout', arguments: { text: 'hello' } },
          { name: 'fetch_url', arguments: { url: `${site.url}/page` } },
        ],
      },
      { text: 'done', usage: { prompt_tokens: 100, completion_tokens: 10 } },
    );
    const big = await fetch(`${base}/v1/agents/big/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'go' }),
    });
    assert.equal(big.status, 200);
    const run = (await big.json()) as { status: string; output: string; cost: number; model: string };
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.equal(run.output, 'done');
    assert.ok(run.cost > 0, `priced by "vllm/*": ${run.cost}`);
    assert.equal(vllm.requests.at(-1)?.model, 'llama-3.1-70b');
    assert.equal(vllm.headers.at(-1)?.authorization, 'Bearer vllm-secret-key');
    const results = JSON.stringify(vllm.requests.at(-1)?.messages.filter((m) => m.role === 'tool'));
    assert.ok(results.includes('HELLO'), results);
    assert.ok(results.includes('the page of the allowed host'), results);
    assert.deepEqual(site.requests, ['GET /page']);

    ollama.script({ text: 'small answer' });
    const small = await fetch(`${base}/v1/agents/small/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi' }),
    });
    assert.equal(((await small.json()) as { output: string }).output, 'small answer');
    assert.equal(ollama.requests.at(-1)?.model, 'qwen3:8b');

    child.process.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.stderr());
    assert.ok(!child.stdout().includes('vllm-secret-key') && !child.stderr().includes('vllm-secret-key'));
  });

  it('applies with the providers and tool directory of --config, which it refuses without', async () => {
    const dataDir = join(tmp.dir, 'apply-data');
    const applied = await cli(
      ['apply', '-f', agentsFile, '--config', config, '--store', 'sqlite', '--data-dir', dataDir],
      {},
    );
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(applied.stdout, 'created    default/big  v1\ncreated    default/small  v1\n');

    const without = await cli(['apply', '-f', agentsFile, '--data-dir', join(tmp.dir, 'other')], {});
    assert.equal(without.code, 1);
    assert.match(without.stderr, /agents\[0\] \("big"\): model names an unknown model provider "vllm"/);

    // Module paths resolve against tools.baseDir of the config file, as the server resolves them.
    const toolsOnly = join(tmp.dir, 'tools-only.yaml');
    writeFileSync(toolsOnly, 'agents:\n  - name: loud\n    tools: [module:./shout.ts]\n');
    const noBaseDir = await cli(['apply', '-f', toolsOnly, '--data-dir', join(tmp.dir, 'other')], {});
    assert.equal(noBaseDir.code, 1);
    assert.match(noBaseDir.stderr, /tools\[0\] names the tool module "\.\/shout\.ts"/);
    const withBaseDir = await cli(
      ['apply', '-f', toolsOnly, '--config', config, '--store', 'sqlite', '--data-dir', dataDir],
      {},
    );
    assert.equal(withBaseDir.code, 0, withBaseDir.stderr);
    assert.equal(withBaseDir.stdout, 'created    default/loud  v1\n');
  });
});
