/**
 * `agentpool serve`, run as a child process on a real port: start-up output, a run over HTTP,
 * and a graceful SIGTERM that leaves the store behind with the run in it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { type CliChild, freePort, spawnCli } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';

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
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${url} never answered; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
}

describe('agentpool serve', () => {
  const tmp = tempDir();
  const children: CliChild[] = [];
  after(() => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    tmp.cleanup();
  });

  it('serves the example agents, runs one over HTTP, and drains on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const dataDir = join(tmp.dir, 'data');
    const child = spawnCli(['serve', '--port', String(port), '--data-dir', dataDir]);
    children.push(child);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/healthz`, child);

    const out = child.stdout();
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
    assert.match(child.stdout(), /SIGTERM: shutting down/);
    assert.match(child.stdout(), /stopped\n$/);
    assert.ok(existsSync(join(dataDir, 'agentpool.db')));

    // the store was closed cleanly: nothing to recover, the run is there
    const pool = await createAgentPool({ dataDir, ttlSweepIntervalMs: 0 });
    try {
      assert.equal(pool.recoveredRuns, 0);
      assert.equal((await pool.runs.get('default', run.id)).status, 'succeeded');
    } finally {
      await pool.close();
    }
  });

  it('fails to start with exit 1 naming the variable of a bad setting', async () => {
    const child = spawnCli(['serve', '--data-dir', join(tmp.dir, 'unused')], { AGENTPOOL_PORT: 'abc' });
    children.push(child);
    assert.equal(await child.exited, 1);
    assert.equal(child.stderr(), 'error: AGENTPOOL_PORT must be an integer from 1 to 65535, got "abc"\n');
  });

  it('fails to start with exit 1 when the configured agents file is bad, naming the entry', async () => {
    const child = spawnCli(['serve', '--store', 'memory', '--agents-file', join(tmp.dir, 'missing.yaml')]);
    children.push(child);
    assert.equal(await child.exited, 1);
    assert.match(child.stderr(), /^error: agents file .*missing\.yaml does not exist\n$/);
  });
});
