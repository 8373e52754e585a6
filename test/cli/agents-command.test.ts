/**
 * `agentpool agents ls|get|rm` and `agentpool stats`, run as child processes against
 * `agentpool serve` on a real port (and against a tiny fake server where the answer must be
 * pinned: paging, and stats with known numbers).
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { cli, fakeServer, freePort, serverForSuite } from '../support/cli-process.ts';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

describe('agentpool agents, against agentpool serve', () => {
  const server = serverForSuite();

  it('ls prints the example agents as a NAME / VERSION / MODEL / TIER / TOOLS table', async () => {
    const { code, stdout, stderr } = await cli(['agents', 'ls'], server.env);
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME +VERSION +MODEL +TIER +TOOLS$/);
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(/ +/)),
      [
        ['researcher', '1', 'demo/assistant', 'warm', 'builtin:current_time'],
        ['support', '1', 'demo/assistant', 'auto', 'builtin:calculator,builtin:current_time'],
        ['triage', '1', 'demo/assistant', 'hot', '-'],
      ],
    );
    // columns line up
    assert.equal(lines[1]!.indexOf('demo/assistant'), lines[0]!.indexOf('MODEL'));
  });

  it('ls --label filters and --limit asks for one page, saying there are more', async () => {
    const { code, stdout, stderr } = await cli(
      ['agents', 'ls', '--label', 'team=support', '--limit', '1'],
      server.env,
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((line) => line.split(/ +/)[0]),
      ['support'],
    );
    assert.match(stderr, /more agents/);
  });

  it('ls --json prints the agents as JSON', async () => {
    const { code, stdout, stderr } = await cli(
      ['agents', 'ls', '--json', '--label', 'team=support'],
      server.env,
    );
    assert.equal(code, 0, stderr);
    const body = JSON.parse(stdout) as { data: { name: string; spec: { tier: string } }[]; nextCursor: null };
    assert.deepEqual(
      body.data.map((a) => [a.name, a.spec.tier]),
      [
        ['support', 'auto'],
        ['triage', 'hot'],
      ],
    );
    assert.equal(body.nextCursor, null);
  });

  it('get prints the agent with its active definition as YAML, or JSON with --json', async () => {
    const yaml = await cli(['agents', 'get', 'support'], server.env);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^name: support\nid: agt_\w+\nproject: default\nversion: 1\n/);
    assert.match(yaml.stdout, /\n {2}model: demo\/assistant\n/);
    assert.match(yaml.stdout, /\n {2}maxSteps: 5\n/);
    assert.match(yaml.stdout, /\n {4}- builtin:calculator\n/);

    const json = await cli(['agents', 'get', 'support', '--json'], server.env);
    assert.equal(json.code, 0, json.stderr);
    const agent = JSON.parse(json.stdout) as {
      name: string;
      activeVersion: number;
      spec: { maxSteps: number };
    };
    assert.equal(agent.name, 'support');
    assert.equal(agent.activeVersion, 1);
    assert.equal(agent.spec.maxSteps, 5);
  });

  it('rm deletes the agent; get then exits 1 with AGENT_NOT_FOUND', async () => {
    const rm = await cli(['agents', 'rm', 'researcher'], server.env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, 'deleted researcher\n');

    const get = await cli(['agents', 'get', 'researcher'], server.env);
    assert.equal(get.code, 1);
    assert.equal(get.stdout, '');
    assert.equal(get.stderr, 'error: AGENT_NOT_FOUND: agent "researcher" not found\n');

    const again = await cli(['agents', 'rm', 'researcher'], server.env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: AGENT_NOT_FOUND: /);
  });

  it('--url wins over AGENTPOOL_URL', async () => {
    const deadPort = await freePort();
    const { code, stdout, stderr } = await cli(['agents', 'get', 'support', '--url', server.url], {
      AGENTPOOL_URL: `http://127.0.0.1:${deadPort}`,
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^name: support\n/);
  });

  it('stats summarises the live pool, and --json prints PoolStats', async () => {
    const text = await cli(['stats'], server.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^active +\d+ \/ \d+ /);
    assert.match(
      text.stdout,
      /^tools +\d+ calls \(\d+ failed, \d+ timed out\); modules \d+ cached, \d+ loads, \d+ reloads, \d+ cache hits, \d+ reloads refused$/m,
    );
    const json = await cli(['stats', '--json'], server.env);
    assert.equal(json.code, 0, json.stderr);
    const stats = JSON.parse(json.stdout) as { maxActive: number; pinned: number };
    assert.equal(typeof stats.maxActive, 'number');
    assert.ok(stats.pinned >= 1, 'the hot triage agent is pinned');
  });
});

describe('agentpool client commands: errors', () => {
  it('exit 1 with a clear message when nothing listens at the URL', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    for (const args of [['agents', 'ls'], ['stats'], ['agents', 'rm', 'x']]) {
      const { code, stdout, stderr } = await cli(args, { AGENTPOOL_URL: url });
      assert.equal(code, 1, args.join(' '));
      assert.equal(stdout, '');
      assert.ok(
        stderr.startsWith(`error: cannot reach agentpool at ${url}; is \`agentpool serve\` running?`),
        stderr,
      );
    }
  });

  it('bad flag values are usage errors (exit 2), as is a URL that is not http(s) (exit 1)', async () => {
    const label = await cli(['agents', 'ls', '--label', 'team'], {});
    assert.equal(label.code, 2);
    assert.match(label.stderr, /--label must be key=value, got "team"/);
    const limit = await cli(['agents', 'ls', '--limit', '0'], {});
    assert.equal(limit.code, 2);
    const url = await cli(['agents', 'ls'], { AGENTPOOL_URL: 'ftp://example.com' });
    assert.equal(url.code, 1);
    assert.equal(url.stderr, 'error: AGENTPOOL_URL must be an http(s) URL, got "ftp://example.com"\n');
  });

  it('an error body that is not agentpool JSON keeps the HTTP status', async () => {
    const fake = await fakeServer((_req, res) => res.writeHead(502).end('bad gateway'));
    try {
      const { code, stderr } = await cli(['agents', 'ls', '--url', fake.url], {});
      assert.equal(code, 1);
      assert.equal(stderr, 'error: HTTP_502: bad gateway\n');
    } finally {
      await fake.close();
    }
  });
});

describe('agentpool stats, against a server that sends fewer figures', () => {
  it('prints ? for a missing figure and still exits 0 (a project key may see project-scoped stats)', async () => {
    const fake = await fakeServer((_req, res) => sendJson(res, 200, { active: 2, maxActive: 10, hits: 5 }));
    try {
      const { code, stdout, stderr } = await cli(['stats', '--project', 'acme'], { AGENTPOOL_URL: fake.url });
      assert.equal(code, 0, stderr);
      assert.deepEqual(stdout.trimEnd().split('\n'), [
        'active       2 / 10  (resident ?, one-shot ?, activating ?, pinned ?, waiting ?)',
        'by state     none',
        'by tier      none',
        'cache        5 hits / ? misses, hit ratio -',
        'activations  ? (? failed), p50 -, p99 -',
        'evictions    ?  (idle ?, retired ?, deactivations ?, acquire timeouts ?)',
      ]);
    } finally {
      await fake.close();
    }
  });
});

describe('agentpool agents ls and stats, against a fake server', () => {
  it('ls follows nextCursor to list every agent, sending the label filters', async () => {
    const agent = (name: string) => ({
      id: `agt_${name}`,
      project: 'default',
      name,
      activeVersion: 2,
      latestVersion: 2,
      spec: { name, model: 'openai/gpt-4o-mini', tier: 'warm', tools: [] },
      createdAt: 0,
      updatedAt: 0,
      lastUsedAt: 0,
      expiresAt: null,
    });
    const fake = await fakeServer((req, res) => {
      const cursor = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor');
      if (cursor === null) sendJson(res, 200, { data: [agent('a'), agent('b')], nextCursor: 'c1' });
      else if (cursor === 'c1') sendJson(res, 200, { data: [agent('c')], nextCursor: null });
      else sendJson(res, 400, { error: { code: 'VALIDATION_FAILED', message: 'bad cursor' } });
    });
    try {
      const { code, stdout, stderr } = await cli(
        ['agents', 'ls', '--label', 'team=x', '--label', 'env=prod', '--url', fake.url],
        {},
      );
      assert.equal(code, 0, stderr);
      assert.deepEqual(
        stdout
          .trimEnd()
          .split('\n')
          .slice(1)
          .map((line) => line.split(/ +/)),
        [
          ['a', '2', 'openai/gpt-4o-mini', 'warm', '-'],
          ['b', '2', 'openai/gpt-4o-mini', 'warm', '-'],
          ['c', '2', 'openai/gpt-4o-mini', 'warm', '-'],
        ],
      );
      assert.deepEqual(fake.requests, [
        'GET /v1/agents?label=team%3Dx&label=env%3Dprod',
        'GET /v1/agents?label=team%3Dx&label=env%3Dprod&cursor=c1',
      ]);
    } finally {
      await fake.close();
    }
  });

  it('stats prints active/max, states, tiers, hit ratio, activations with p50/p99 and evictions', async () => {
    const stats = {
      policy: { name: 'lru', size: 3 },
      maxActive: 50,
      maxBytes: 1_000_000,
      active: 4,
      resident: 3,
      oneShot: 1,
      activating: 0,
      pinned: 1,
      bytes: 1234,
      waiting: 0,
      byState: { created: 0, initializing: 0, ready: 3, busy: 1, paused: 0, draining: 0 },
      byTier: { hot: 1, warm: 2, cold: 1, auto: 0 },
      hits: 30,
      misses: 10,
      hitRatio: 0.75,
      activations: 10,
      activationFailures: 1,
      evictions: 5,
      idleDeactivations: 2,
      retirements: 1,
      deactivations: 8,
      acquireTimeouts: 0,
      activationLatencyMs: { buckets: [1, 5], counts: [0, 0, 0], count: 0, sum: 0, p50: 2.5, p99: null },
    };
    const fake = await fakeServer((_req, res) => sendJson(res, 200, stats));
    try {
      const { code, stdout, stderr } = await cli(['stats'], { AGENTPOOL_URL: fake.url });
      assert.equal(code, 0, stderr);
      assert.deepEqual(stdout.trimEnd().split('\n'), [
        'active       4 / 50  (resident 3, one-shot 1, activating 0, pinned 1, waiting 0)',
        'by state     ready 3, busy 1',
        'by tier      hot 1, warm 2, cold 1',
        'cache        30 hits / 10 misses, hit ratio 75.0%',
        'activations  10 (1 failed), p50 2.5 ms, p99 -',
        'evictions    5  (idle 2, retired 1, deactivations 8, acquire timeouts 0)',
        'policy       lru',
      ]);
      assert.deepEqual(fake.requests, ['GET /v1/pool/stats']);

      const json = await cli(['stats', '--json'], { AGENTPOOL_URL: fake.url });
      assert.deepEqual(JSON.parse(json.stdout), stats);
    } finally {
      await fake.close();
    }
  });
});
