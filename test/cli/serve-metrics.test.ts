/**
 * `agentpool serve` with AGENTPOOL_METRICS_TOKEN, as a child process on a real port: Prometheus'
 * bearer credentials read `/metrics`, nothing else does.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CliChild, freePort, spawnCli } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const TOKEN = 'metrics-token-0123456789abcdef';

describe('agentpool serve with a metrics token', () => {
  const tmp = tempDir();
  let child: CliChild | undefined;
  after(() => {
    if (child !== undefined && child.process.exitCode === null) child.process.kill('SIGKILL');
    tmp.cleanup();
  });

  it('takes the token from AGENTPOOL_METRICS_TOKEN: /metrics answers it and the admin key only', async () => {
    const port = await freePort();
    child = spawnCli(['serve', '--port', String(port), '--data-dir', join(tmp.dir, 'data')], {
      AGENTPOOL_ADMIN_KEY: ADMIN,
      AGENTPOOL_METRICS_TOKEN: TOKEN,
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    let up = false;
    while (!up && Date.now() < deadline && child.process.exitCode === null) {
      up = await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(up, `the server never answered:\n${child.stdout()}\n${child.stderr()}`);
    const status = async (path: string, token?: string) => {
      const res = await fetch(`${url}${path}`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await status('/metrics'), 401);
    assert.equal(await status('/metrics', TOKEN), 200);
    assert.equal(await status('/metrics', ADMIN), 200);
    assert.equal(await status('/v1/agents', TOKEN), 401, 'the metrics token opens nothing else');
    assert.equal(await status('/v1/agents', ADMIN), 200);
    child.process.kill('SIGTERM');
    assert.equal(await child.exited, 0);
  });
});
