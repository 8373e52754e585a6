/**
 * `agentpool top` as a process, the way an operator runs it: it redraws the live figures every
 * `--interval` seconds (clearing the screen with ANSI) until Ctrl-C (SIGINT), then exits 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnCli } from '../support/cli-process.ts';
import { listeningServer } from './in-process.ts';

const ADMIN = 'admin-key-for-the-top-tests-0123456789';
const CLEAR = '\x1b[2J\x1b[H';

describe('agentpool top', () => {
  let server: Awaited<ReturnType<typeof listeningServer>>;
  before(async () => {
    server = await listeningServer({ adminKey: ADMIN });
  });
  after(() => server.close());

  it('redraws every --interval seconds until Ctrl-C, then exits 0', async () => {
    const top = spawnCli(['top', '--interval', '1'], { AGENTPOOL_URL: server.url, AGENTPOOL_API_KEY: ADMIN });
    try {
      for (const deadline = Date.now() + 20_000; top.stdout().split(CLEAR).length < 3;) {
        if (Date.now() > deadline || top.process.exitCode !== null) assert.fail(top.stdout() + top.stderr());
        await new Promise((r) => setTimeout(r, 50));
      }
      const frames = top.stdout().split(CLEAR).slice(1);
      assert.match(frames[0]!, /^agentpool top — whole pool — /);
      assert.match(frames[0]!, /\(q to quit\)/);
      top.process.kill('SIGINT');
      assert.equal(await top.exited, 0, top.stderr());
    } finally {
      if (top.process.exitCode === null) top.process.kill('SIGKILL');
    }
  });

  it('refuses a bad --interval as a usage error (exit 2)', async () => {
    const top = spawnCli(['top', '--interval', '0'], { AGENTPOOL_URL: server.url });
    assert.equal(await top.exited, 2);
    assert.match(top.stderr(), /--interval must be an integer from 1 to 3600/);
  });
});
