/**
 * How `agentpool serve` starts in each mode: PostgreSQL without Redis is one node (and says a
 * second node needs Redis); Redis with the SQLite store is refused, naming `redisUrl`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cli, freePort, spawnCli } from '../support/cli-process.ts';
import { waitForStatus } from '../support/cluster.ts';
import { testDatabase } from '../support/postgres.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('agentpool serve: which mode it starts in', () => {
  it('--store postgres without --redis-url starts as a single node and says so', async () => {
    const db = await testDatabase('start');
    const port = await freePort();
    const child = spawnCli([
      'serve',
      '--store',
      'postgres',
      '--database-url',
      db.url,
      '--port',
      String(port),
      '--node-id',
      'lonely',
    ]);
    try {
      await waitForStatus(`http://127.0.0.1:${port}/readyz`, 200, child);
      const deadline = Date.now() + 5000;
      while (!child.stdout().includes('mode:') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.match(
        child.stdout(),
        /^ {2}mode: +single node lonely on PostgreSQL \(no Redis: a second node needs --redis-url\)$/m,
      );
      const cluster = await fetch(`http://127.0.0.1:${port}/v1/cluster`);
      assert.equal(cluster.status, 200, 'development mode: no key needed');
      const body = (await cluster.json()) as { mode: string; node: string; data: { id: string }[] };
      assert.equal(body.mode, 'single');
      assert.deepEqual(
        body.data.map((n) => n.id),
        ['lonely'],
      );
    } finally {
      child.process.kill('SIGKILL');
      await child.exited;
      await db.cleanup();
    }
  });

  it('--redis-url with --store sqlite exits with an error naming redisUrl', async () => {
    const tmp = tempDir();
    try {
      const result = await cli(
        [
          'serve',
          '--store',
          'sqlite',
          '--data-dir',
          tmp.dir,
          '--redis-url',
          TEST_REDIS_URL,
          '--port',
          String(await freePort()),
        ],
        {},
      );
      assert.ok(result.code === 1 || result.code === 2, `exit code ${result.code}\n${result.stderr}`);
      assert.match(result.stderr, /redisUrl/);
    } finally {
      tmp.cleanup();
    }
  });
});
