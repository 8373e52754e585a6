/**
 * The admin's commands (`projects …`, `keys …`, `usage`, `--project`) and what the CLI says when
 * a key is missing or refused, against a real server with an admin key on a free port; `projects
 * rm` also against a fake server answering as a server that refuses non-empty projects does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fakeServer } from '../support/cli-process.ts';
import { listeningServer, runCli } from './in-process.ts';

const ADMIN = 'admin-key-for-the-cli-tests-0123456789';

describe('agentpool projects, keys and usage, against a server with an admin key', () => {
  let server: Awaited<ReturnType<typeof listeningServer>>;
  const as = (key: string | undefined) => ({
    AGENTPOOL_URL: server.url,
    ...(key !== undefined && { AGENTPOOL_API_KEY: key }),
  });

  before(async () => {
    server = await listeningServer({ adminKey: ADMIN });
  });
  after(() => server.close());

  it('without AGENTPOOL_API_KEY, a refused request says to set it', async () => {
    assert.deepEqual(await runCli(['agents', 'ls'], as(undefined)), {
      code: 1,
      stdout: '',
      stderr:
        'error: UNAUTHENTICATED: this server needs an API key: send Authorization: Bearer <key>\n' +
        'hint: set AGENTPOOL_API_KEY to an API key of this server (a project key, or the admin key)\n',
    });
  });

  it('projects create, ls and get; limits shows the quotas and budgets and changes them field by field', async () => {
    const created = await runCli(
      ['projects', 'create', 'acme', '--name', 'Acme Corp', '--limits', '{"quotas":{"maxConcurrentRuns":5}}'],
      as(ADMIN),
    );
    assert.deepEqual(created, { code: 0, stdout: 'created acme\n', stderr: '' });
    assert.equal((await runCli(['projects', 'create', 'globex'], as(ADMIN))).code, 0);

    const ls = await runCli(['projects', 'ls'], as(ADMIN));
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      ls.stdout
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/ {2,}/).slice(0, 2)),
      [
        ['ID', 'NAME'],
        ['acme', 'Acme Corp'],
        ['default', 'default'], // the default project is a record, created at start
        ['globex', 'globex'],
      ],
    );

    const get = await runCli(['projects', 'get', 'acme'], as(ADMIN));
    assert.match(get.stdout, /^id: acme\nname: Acme Corp\ncreatedAt: \d{4}-/);
    assert.match(get.stdout, /\nlimits:\n {2}quotas:\n {4}maxConcurrentRuns: 5\n/);

    const shown = await runCli(['projects', 'limits', 'acme'], as(ADMIN));
    assert.deepEqual(shown.stdout.split('\n'), [
      'quotas   maxConcurrentRuns 5',
      "budgets  the server's defaults",
      '',
    ]);
    const changed = await runCli(
      ['projects', 'limits', 'acme', '--quota', 'runsPerMinute=60', '--budget', 'dailyUsd=2.5'],
      as(ADMIN),
    );
    assert.equal(changed.code, 0, changed.stderr);
    assert.deepEqual(changed.stdout.split('\n'), [
      'quotas   maxConcurrentRuns 5, runsPerMinute 60',
      'budgets  dailyUsd 2.5',
      '',
    ]);
    const reset = await runCli(
      ['projects', 'limits', 'acme', '--quota', 'maxConcurrentRuns=default', '--json'],
      as(ADMIN),
    );
    assert.deepEqual(JSON.parse(reset.stdout), { quotas: { runsPerMinute: 60 }, budgets: { dailyUsd: 2.5 } });

    const unknown = await runCli(['projects', 'limits', 'acme', '--quota', 'colour=3'], as(ADMIN));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: VALIDATION_FAILED: .*colour/);
  });

  it('projects limits --retention-days keeps a project’s data its own number of days, "default" resets it', async () => {
    await runCli(['projects', 'create', 'archive'], as(ADMIN));
    const kept = await runCli(['projects', 'limits', 'archive', '--retention-days', '365'], as(ADMIN));
    assert.equal(kept.code, 0, kept.stderr);
    assert.deepEqual(kept.stdout.split('\n'), [
      "quotas   the server's defaults",
      "budgets  the server's defaults",
      'retention days 365',
      '',
    ]);
    assert.deepEqual((await server.pool.projects.get('archive')).limits.retention, { days: 365 });
    const reset = await runCli(
      ['projects', 'limits', 'archive', '--retention-days', 'default', '--json'],
      as(ADMIN),
    );
    assert.deepEqual(JSON.parse(reset.stdout), { quotas: {}, budgets: {} });
    const bad = await runCli(['projects', 'limits', 'archive', '--retention-days', 'forever'], as(ADMIN));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--retention-days must be a number of days/);
  });

  it('keys create prints the secret alone; the key acts in its project; ls lists it; revoke ends it', async () => {
    await runCli(['projects', 'create', 'initech'], as(ADMIN));
    const created = await runCli(['keys', 'create', 'initech', '--name', 'ci'], as(ADMIN));
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^ap_\S+\n$/);
    const key = created.stdout.trim();
    const keyId = /^key (key_\w+) of project initech: shown only now/.exec(created.stderr)?.[1];
    assert.ok(keyId !== undefined, created.stderr);

    const ls = await runCli(['keys', 'ls', 'initech'], as(ADMIN));
    const [header, row, ...more] = ls.stdout.trimEnd().split('\n');
    assert.match(header!, /^ID +PREFIX +NAME +CREATED +LAST USED +REVOKED$/);
    assert.deepEqual(row!.split(/ {2,}/).slice(0, 3), [keyId, `${key.slice(0, 8)}…`, 'ci']);
    assert.deepEqual(more, []);
    assert.ok(!ls.stdout.includes(key), 'the secret is never listed');

    // the project key works in its project, and is not the admin's
    assert.deepEqual(await runCli(['agents', 'ls'], as(key)), { code: 0, stdout: '', stderr: 'no agents\n' });
    const forbidden = await runCli(['projects', 'ls'], as(key));
    assert.equal(forbidden.code, 1);
    assert.equal(
      forbidden.stderr,
      'error: FORBIDDEN: managing projects and keys needs the admin key\n' +
        'hint: this needs the admin key: set AGENTPOOL_API_KEY to it\n',
    );

    assert.deepEqual(await runCli(['keys', 'revoke', 'initech', keyId], as(ADMIN)), {
      code: 0,
      stdout: `revoked ${keyId}\n`,
      stderr: '',
    });
    const refused = await runCli(['agents', 'ls'], as(key));
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      'error: UNAUTHENTICATED: the API key is unknown or revoked\n' +
        "hint: AGENTPOOL_API_KEY holds a key this server does not know (revoked, or another server's)\n",
    );
    const revoked = JSON.parse((await runCli(['keys', 'ls', 'initech', '--json'], as(ADMIN))).stdout) as {
      data: { revokedAt: number | null }[];
    };
    assert.equal(typeof revoked.data[0]?.revokedAt, 'number');
  });

  it('--project makes the admin key act in that project', async () => {
    await runCli(['projects', 'create', 'hooli'], as(ADMIN));
    await server.pool.agents.apply('hooli', { name: 'helper', tools: ['builtin:calculator'] });

    const ls = await runCli(['agents', 'ls', '--project', 'hooli'], as(ADMIN));
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      ls.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((line) => line.split(/ +/)[0]),
      ['helper'],
    );
    assert.equal((await runCli(['agents', 'ls'], as(ADMIN))).stderr, 'no agents\n', 'the default project');

    const run = await runCli(
      ['run', 'helper', 'what is 2+2', '--project', 'hooli', '--new-thread'],
      as(ADMIN),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '[demo] 2+2 = 4\n');
    const thread = /^thread (thr_\w+)/.exec(run.stderr)?.[1] ?? assert.fail(run.stderr);
    const messages = await runCli(['threads', 'messages', thread, '--project', 'hooli'], as(ADMIN));
    assert.equal(messages.code, 0, messages.stderr);
    assert.equal((await runCli(['threads', 'get', thread], as(ADMIN))).code, 1, 'not in the default project');
  });

  it("usage prints a project's quotas and budgets against its use, or the ProjectUsage with --json", async () => {
    await runCli(['projects', 'create', 'umbrella', '--limits', '{"quotas":{"maxAgents":10}}'], as(ADMIN));
    await runCli(['projects', 'limits', 'umbrella', '--budget', 'dailyUsd=10'], as(ADMIN));
    await server.pool.agents.apply('umbrella', { name: 'a' });
    const usage = await runCli(['usage', 'umbrella'], as(ADMIN));
    assert.equal(usage.code, 0, usage.stderr);
    const lines = usage.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 5), [
      'project          umbrella',
      'agents           1 of 10',
      'runs in flight   0 of unlimited',
      'runs / minute    0 of unlimited',
      'tokens / minute  0 of unlimited',
    ]);
    assert.match(
      lines[5]!,
      /^daily budget {5}\$0\.0000 spent, \$0\.0000 reserved, \$10\.0000 left of \$10\.0000 \(resets \d{4}-/,
    );
    assert.match(lines[6]!, /^monthly budget {3}\$0\.0000 spent, \$0\.0000 reserved, no limit \(resets /);
    assert.equal(lines[7], 'per-run budget   no limit');

    const viaFlag = await runCli(['usage', '--project', 'umbrella', '--json'], as(ADMIN));
    const json = JSON.parse(viaFlag.stdout) as { project: string; quotas: { maxAgents: unknown } };
    assert.deepEqual([json.project, json.quotas.maxAgents], ['umbrella', { limit: 10, used: 1 }]);

    // a project key reads only its own project's usage, which must be named
    const key = (await runCli(['keys', 'create', 'umbrella'], as(ADMIN))).stdout.trim();
    const own = await runCli(['usage', 'umbrella'], as(key));
    assert.equal(own.code, 0, own.stderr);
    const missing = await runCli(['usage'], as(key));
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^error: PROJECT_NOT_FOUND: .*\nhint: name the project: agentpool usage <project>\n$/,
    );
  });

  it('projects rm deletes a project', async () => {
    await runCli(['projects', 'create', 'doomed'], as(ADMIN));
    assert.deepEqual(await runCli(['projects', 'rm', 'doomed'], as(ADMIN)), {
      code: 0,
      stdout: 'deleted doomed (agents 0, threads 0, messages 0, runs 0, keys 0)\n',
      stderr: '',
    });
    const again = await runCli(['projects', 'rm', 'doomed'], as(ADMIN));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: PROJECT_NOT_FOUND: /);
  });
});

describe('agentpool projects rm, against a fake server', () => {
  it('a refused non-empty project suggests --cascade; --cascade passes through and prints the counts', async () => {
    const fake = await fakeServer((req, res) => {
      if (req.url === '/v1/projects/acme?cascade=true') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ project: 'acme', deleted: { agents: 2, threads: 1, runs: 3, keys: 1 } }));
      } else {
        res.writeHead(409, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            error: { code: 'PROJECT_NOT_EMPTY', message: 'project "acme" still holds 2 agents', details: {} },
          }),
        );
      }
    });
    try {
      const refused = await runCli(['projects', 'rm', 'acme'], { AGENTPOOL_URL: fake.url });
      assert.deepEqual(refused, {
        code: 1,
        stdout: '',
        stderr:
          'error: PROJECT_NOT_EMPTY: project "acme" still holds 2 agents\n' +
          'hint: add --cascade to delete the project with its agents, threads, runs and keys\n',
      });
      const cascade = await runCli(['projects', 'rm', 'acme', '--cascade'], { AGENTPOOL_URL: fake.url });
      assert.deepEqual(cascade, {
        code: 0,
        stdout: 'deleted acme (agents 2, threads 1, runs 3, keys 1)\n',
        stderr: '',
      });
      const json = await runCli(['projects', 'rm', 'acme', '--cascade', '--json'], {
        AGENTPOOL_URL: fake.url,
      });
      assert.deepEqual(JSON.parse(json.stdout), {
        project: 'acme',
        deleted: { agents: 2, threads: 1, runs: 3, keys: 1 },
      });
      assert.deepEqual(fake.requests, [
        'DELETE /v1/projects/acme',
        'DELETE /v1/projects/acme?cascade=true',
        'DELETE /v1/projects/acme?cascade=true',
      ]);
    } finally {
      await fake.close();
    }
  });
});
