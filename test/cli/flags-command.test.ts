/**
 * `agentpool flags ls|set|rm` as processes against a real `agentpool serve` (development mode: the
 * admin's routes are open), and in this process against a server with an admin key, where a
 * project key is refused with FORBIDDEN.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, serverForSuite } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';
import { listeningServer, runCli } from './in-process.ts';

describe('agentpool flags, as processes against agentpool serve', () => {
  const server = serverForSuite();
  const dir = tempDir();
  after(() => dir.cleanup());

  it('sets from flags and from a file, lists, and deletes', async () => {
    const set = await cli(
      ['flags', 'set', 'new-ui', '--strategy', 'percentage', '--percent', '20'],
      server.env,
    );
    assert.deepEqual(set, { code: 0, stdout: 'set new-ui: percentage 20% (revision 1)\n', stderr: '' });
    const file = join(dir.dir, 'beta.yaml');
    writeFileSync(file, 'strategy: allowlist\nprojects: [acme, globex]\n');
    const fromFile = await cli(['flags', 'set', 'beta', '-f', file], server.env);
    assert.deepEqual(fromFile, {
      code: 0,
      stdout: 'set beta: allowlist acme,globex (revision 2)\n',
      stderr: '',
    });

    const ls = await cli(['flags', 'ls'], server.env);
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+STRATEGY\s+SETTING\s+ON NOW\s+REVISION\s+UPDATED BY\s+UPDATED$/);
    assert.match(lines[1]!, /^beta\s+allowlist\s+acme,globex\s+-\s+2\s+admin\s+\d{4}-/);
    assert.match(lines[2]!, /^new-ui\s+percentage\s+20%\s+20%\s+1\s+admin\s+\d{4}-/);

    assert.deepEqual(await cli(['flags', 'rm', 'new-ui'], server.env), {
      code: 0,
      stdout: 'deleted new-ui\n',
      stderr: '',
    });
    const again = await cli(['flags', 'rm', 'new-ui'], server.env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: NOT_FOUND: feature flag "new-ui" is not defined/);
    const json = await cli(['flags', 'ls', '--json'], server.env);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { data: { name: string }[] }).data.map((f) => f.name),
      ['beta'],
    );
  });

  it('prints the server’s validation error, and a usage error (exit 2) without a strategy', async () => {
    const bad = await cli(
      ['flags', 'set', 'new-ui', '--strategy', 'percentage', '--percent', '120'],
      server.env,
    );
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /error: VALIDATION_FAILED: flag\.percent must be a number from 0 to 100, got 120/,
    );
    const none = await cli(['flags', 'set', 'new-ui'], server.env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--strategy is required/);
  });
});

describe('agentpool flags, against a server with an admin key', () => {
  const ADMIN = 'admin-key-for-the-flags-tests-0123456789';
  let server: Awaited<ReturnType<typeof listeningServer>>;
  before(async () => {
    server = await listeningServer({ adminKey: ADMIN });
  });
  after(() => server.close());

  it('works with the admin key, refuses a project key with FORBIDDEN, keeps a conditional write', async () => {
    const env = (key: string) => ({ AGENTPOOL_URL: server.url, AGENTPOOL_API_KEY: key });
    const set = await runCli(['flags', 'set', 'beta', '--strategy', 'all', '--if-revision', '0'], env(ADMIN));
    assert.equal(set.code, 0, set.stderr);
    const conflict = await runCli(
      ['flags', 'set', 'beta', '--strategy', 'none', '--if-revision', '0'],
      env(ADMIN),
    );
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /VERSION_CONFLICT/);
    await server.pool.projects.create({ id: 'acme' });
    const { key } = await server.pool.projects.createKey('acme');
    for (const args of [
      ['flags', 'ls'],
      ['flags', 'set', 'beta', '--strategy', 'none'],
      ['flags', 'rm', 'beta'],
    ]) {
      const refused = await runCli(args, env(key));
      assert.equal(refused.code, 1, args.join(' '));
      assert.match(refused.stderr, /^error: FORBIDDEN: managing feature flags needs the admin key/);
    }
    assert.equal(server.pool.flags.get('beta')?.flag.strategy, 'all');
  });
});
