/**
 * `agentpool serve`, run as a child process on a real port: start-up output and JSON log lines, a
 * run over HTTP, the bundled examples applied only into an empty store, a graceful SIGTERM that
 * keeps serving (503 on /readyz and for new runs) while a run drains, and the log and CORS settings.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { type CliChild, freePort, spawnCli } from '../support/cli-process.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { tempDir } from '../support/temp-dir.ts';

/** Polls `url` until it answers `status` (200 unless told), the child exits, or 20 s pass. */
async function waitFor(url: string, child: CliChild, status = 200): Promise<Response> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(url);
      if (response.status === status) return response;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return assert.fail(
    `${url} never answered ${status}; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`,
  );
}

type LogLine = Record<string, unknown> & { level: string; msg: string };

/** The JSON log lines the child wrote to stdout (the banner lines are plain text). */
function logLines(child: CliChild): LogLine[] {
  return child
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

async function startServe(args: string[], env: Record<string, string> = {}) {
  const port = await freePort();
  const child = spawnCli(['serve', '--port', String(port), ...args], env);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/healthz`, child);
  return { child, base };
}

describe('agentpool serve', () => {
  const tmp = tempDir();
  const children: CliChild[] = [];
  let fake: FakeOpenAI | undefined;
  after(async () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    await fake?.close();
    tmp.cleanup();
  });

  async function serve(args: string[], env: Record<string, string> = {}) {
    const started = await startServe(args, env);
    children.push(started.child);
    return started;
  }

  it('serves the example agents, runs one over HTTP, logs JSON lines, and drains on SIGTERM with exit 0', async () => {
    const dataDir = join(tmp.dir, 'data');
    const { child, base } = await serve(['--data-dir', dataDir]);
    const port = new URL(base).port;

    const out = child.stdout();
    assert.match(out, /the store is empty: applying the bundled examples .*examples\/agents\.yaml/);
    assert.match(out, /created {4}default\/support {2}v1/);
    assert.match(out, /created {4}default\/triage {2}v1/);
    assert.match(out, /prewarmed 1 hot agent/);
    assert.ok(out.includes(`listening on ${base}`), out);
    assert.ok(out.includes(`${base}/docs`), out);
    assert.ok(
      out.includes(
        `curl -s 127.0.0.1:${port}/v1/agents/support/runs -H 'content-type: application/json' -d '{"input":"what is 17*23"}'`,
      ),
      out,
    );
    assert.match(child.stderr(), /WARNING: NO AUTHENTICATION/);

    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const response = await fetch(`${base}/v1/agents/support/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'what is 17*23' }),
    });
    assert.equal(response.status, 200);
    const run = (await response.json()) as { id: string; status: string; output: string };
    assert.equal(run.status, 'succeeded');
    assert.match(run.output, /391/);

    child.process.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.stderr());
    assert.match(child.stdout(), /SIGTERM: draining; 0 run\(s\) in flight/);
    assert.match(child.stdout(), /stopped\n$/);
    assert.ok(existsSync(join(dataDir, 'agentpool.db')));

    // Machine-readable lines: lifecycle, and one access line for the run (probes are debug: absent).
    const lines = logLines(child);
    const messages = lines.map((l) => l.msg);
    for (const msg of ['agents file applied', 'agentpool is listening', 'draining', 'stopped']) {
      assert.ok(messages.includes(msg), `${msg} in ${messages.join(' | ')}`);
    }
    const access = lines.filter((l) => l.component === 'http' && typeof l.status === 'number');
    assert.deepEqual(
      access.map((l) => [l.level, l.method, l.route, l.status, l.project]),
      [['info', 'POST', '/v1/agents/:idOrName/runs', 200, 'default']],
    );
    assert.ok(!child.stdout().includes('what is 17*23"}\n{'), 'no request body in the log');

    // the store was closed cleanly: nothing to recover, the run is there
    const pool = await createAgentPool({ dataDir, ttlSweepIntervalMs: 0 });
    try {
      assert.equal(pool.recoveredRuns, 0);
      assert.equal((await pool.runs.get('default', run.id)).status, 'succeeded');
    } finally {
      await pool.close();
    }
  });

  it('applies the bundled examples only into an empty store: an agent edited through the API survives a restart', async () => {
    const dataDir = join(tmp.dir, 'edited');
    const first = await serve(['--data-dir', dataDir]);
    const patch = await fetch(`${first.base}/v1/agents/support`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instructions: 'Edited through the API.' }),
    });
    assert.equal(patch.status, 200);
    first.child.process.kill('SIGTERM');
    assert.equal(await first.child.exited, 0);

    const second = await serve(['--data-dir', dataDir]);
    assert.match(
      second.child.stdout(),
      /the store already holds agents: the bundled examples are not applied/,
    );
    assert.doesNotMatch(second.child.stdout(), /applying/);
    const agent = (await (await fetch(`${second.base}/v1/agents/support`)).json()) as {
      activeVersion: number;
      spec: { instructions: string };
    };
    assert.equal(agent.spec.instructions, 'Edited through the API.');
    assert.equal(agent.activeVersion, 2);
    second.child.process.kill('SIGTERM');
    assert.equal(await second.child.exited, 0);

    // A configured agents file is the declared state: it is applied at every start.
    const third = await serve(['--data-dir', dataDir, '--agents-file', 'examples/agents.yaml']);
    // (log lines, such as the prewarm of the working-set checkpoint's, may come in between)
    assert.match(
      third.child.stdout().replace(/^\{.*\}\n/gm, ''),
      /applying examples\/agents\.yaml\n {2}updated {4}default\/support {2}v3/,
    );
    third.child.process.kill('SIGTERM');
    assert.equal(await third.child.exited, 0);
  });

  it('keeps serving while a run drains: /readyz and new runs answer 503 over the socket, other requests 200', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const modelCalled = new Promise<void>((resolve) => (arrived = resolve));
    fake = await startFakeOpenAI({
      handler: async () => {
        arrived();
        await gate;
        return { text: 'finished while draining' };
      },
    });
    const agentsFile = join(tmp.dir, 'slow.json');
    writeFileSync(
      agentsFile,
      JSON.stringify({
        agents: [{ name: 'slow', instructions: 'Answer.', model: 'openai-compatible/slow' }],
      }),
    );
    const { child, base } = await serve(['--store', 'memory', '--agents-file', agentsFile], {
      AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: fake.url,
      AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'test',
    });
    const post = (input: string) =>
      fetch(`${base}/v1/agents/slow/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input }),
      });
    const inFlight = post('the run in flight');
    await modelCalled;

    child.process.kill('SIGTERM');
    const ready = await waitFor(`${base}/readyz`, child, 503);
    assert.deepEqual(await ready.json(), { status: 'draining' });
    const refused = await post('a run too late');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'SHUTTING_DOWN');
    assert.equal((await fetch(`${base}/v1/agents`)).status, 200);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal(child.process.exitCode, null, 'still running while the run is in flight');

    release();
    const answered = await inFlight;
    assert.equal(answered.status, 200);
    const run = (await answered.json()) as { status: string; output: string };
    assert.deepEqual([run.status, run.output], ['succeeded', 'finished while draining']);
    assert.equal(await child.exited, 0, child.stderr());
    assert.match(child.stdout(), /SIGTERM: draining; 1 run\(s\) in flight/);
    const draining = logLines(child).find((l) => l.msg === 'draining');
    assert.deepEqual([draining?.level, draining?.runsInFlight], ['info', 1]);
    const access = logLines(child).find((l) => l.status === 503 && l.route === '/v1/agents/:idOrName/runs');
    assert.deepEqual([access?.level, access?.code], ['warn', 'SHUTTING_DOWN']);
  });

  it('interrupts the runs still in flight when --shutdown-timeout-ms passes, then exits 0', async () => {
    const hanging = await startFakeOpenAI({ handler: () => ({ hang: true }) });
    try {
      const agentsFile = join(tmp.dir, 'hang.json');
      writeFileSync(
        agentsFile,
        JSON.stringify({
          agents: [{ name: 'stuck', instructions: 'Answer.', model: 'openai-compatible/x' }],
        }),
      );
      const { child, base } = await serve(
        ['--store', 'memory', '--agents-file', agentsFile, '--shutdown-timeout-ms', '100'],
        { AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: hanging.url, AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'test' },
      );
      const accepted = await fetch(`${base}/v1/agents/stuck/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: 'hi', background: true }),
      });
      assert.equal(accepted.status, 202);
      child.process.kill('SIGTERM');
      assert.equal(await child.exited, 0, child.stderr());
      assert.match(child.stdout(), /shutdown timeout: interrupting 1 run\(s\)/);
      const warn = logLines(child).find((l) => l.msg.startsWith('shutdown timeout'));
      assert.deepEqual([warn?.level, warn?.runs], ['warn', 1]);
      const interrupted = logLines(child).find((l) => l.msg === 'run interrupted');
      assert.deepEqual([interrupted?.level, interrupted?.code], ['warn', 'RUN_INTERRUPTED']);
    } finally {
      await hanging.close();
    }
  });

  it('takes the log level and CORS origins from the environment', async () => {
    const { child, base } = await serve(['--store', 'memory'], {
      AGENTPOOL_LOG_LEVEL: 'warn',
      AGENTPOOL_CORS_ORIGINS: 'https://app.example.com',
    });
    const preflight = await fetch(`${base}/v1/agents`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal((await fetch(`${base}/v1/agents/nope`)).status, 404);
    child.process.kill('SIGTERM');
    assert.equal(await child.exited, 0);
    assert.match(child.stdout(), /CORS: {6}browsers may call from https:\/\/app\.example\.com/);
    assert.match(child.stdout(), /logs: {6}warn and above/);
    assert.deepEqual(logLines(child), [], 'nothing below warn is written');
  });

  it('fails to start with exit 1 naming the variable of a bad setting', async () => {
    const child = spawnCli(['serve', '--data-dir', join(tmp.dir, 'unused')], { AGENTPOOL_PORT: 'abc' });
    children.push(child);
    assert.equal(await child.exited, 1);
    assert.equal(child.stderr(), 'error: AGENTPOOL_PORT must be an integer from 1 to 65535, got "abc"\n');
  });

  it('refuses an unknown --log-level as a usage error (exit 2) naming the flag', async () => {
    const child = spawnCli(['serve', '--store', 'memory', '--log-level', 'verbose']);
    children.push(child);
    assert.equal(await child.exited, 2);
    assert.match(child.stderr(), /^error: --log-level must be one of "fatal", .*"silent", got "verbose"\n$/);
  });

  it('fails to start with exit 1 when the configured agents file is bad, naming the entry', async () => {
    const child = spawnCli(['serve', '--store', 'memory', '--agents-file', join(tmp.dir, 'missing.yaml')]);
    children.push(child);
    assert.equal(await child.exited, 1);
    assert.match(child.stderr(), /^error: agents file .*missing\.yaml does not exist\n$/);
  });
});
