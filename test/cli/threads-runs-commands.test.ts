/**
 * `agentpool threads …` and `agentpool runs …` against a real server on a free port (a memory
 * pool with a slow model that holds runs until released), and `runs follow` against a fake
 * server whose event stream breaks off.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fakeServer } from '../support/cli-process.ts';
import { listeningServer, runCli } from './in-process.ts';

describe('agentpool threads and runs, against a server', () => {
  let server: Awaited<ReturnType<typeof listeningServer>>;
  const env = () => ({ AGENTPOOL_URL: server.url });

  before(async () => {
    server = await listeningServer();
    await server.pool.agents.apply('default', { name: 'support', tools: ['builtin:calculator'] });
    await server.pool.agents.apply('default', { name: 'slow', model: 'slow/x' });
  });
  after(async () => {
    server.slow.release();
    await server.close();
  });

  /** Starts a background run over HTTP and returns its id. */
  async function backgroundRun(agent: string, body: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${server.url}/v1/agents/${agent}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ background: true, ...body }),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  }

  it('threads create prints the id alone; get and messages show the conversation; rm deletes it', async () => {
    const created = await runCli(['threads', 'create'], env());
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^thr_\w+\n$/);
    const id = created.stdout.trim();

    const run = await runCli(['run', 'support', 'what is 17*23', '--thread', id], env());
    assert.equal(run.code, 0, run.stderr);

    const get = await runCli(['threads', 'get', id], env());
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, new RegExp(`^id: ${id}\\nproject: default\\nmessages: 4\\nttlSeconds: null\\n`));
    assert.match(get.stdout, /\ncreatedAt: \d{4}-\d\d-\d\dT/);

    const messages = await runCli(['threads', 'messages', id], env());
    assert.equal(messages.code, 0, messages.stderr);
    assert.deepEqual(messages.stdout.trimEnd().split('\n'), [
      '#1 user      what is 17*23',
      '#2 assistant → calculator({"expression":"17*23"})',
      '#3 tool      ← calculator: {"expression":"17*23","result":391}',
      '#4 assistant [demo] 17*23 = 391',
    ]);

    const first = await runCli(['threads', 'messages', id, '--limit', '1', '--json'], env());
    const page = JSON.parse(first.stdout) as { data: { seq: number }[]; nextCursor: string | null };
    assert.deepEqual(
      page.data.map((m) => m.seq),
      [1],
    );
    assert.equal(typeof page.nextCursor, 'string');

    const rm = await runCli(['threads', 'rm', id], env());
    assert.deepEqual(rm, { code: 0, stdout: `deleted ${id}\n`, stderr: '' });
    const gone = await runCli(['threads', 'get', id], env());
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error: THREAD_NOT_FOUND: /);
  });

  it('threads create takes --metadata and --ttl-seconds, and prints the thread with --json', async () => {
    const { code, stdout, stderr } = await runCli(
      ['threads', 'create', '--metadata', '{"team":"billing"}', '--ttl-seconds', '60', '--json'],
      env(),
    );
    assert.equal(code, 0, stderr);
    const thread = JSON.parse(stdout) as { metadata: unknown; ttlSeconds: number };
    assert.deepEqual([thread.metadata, thread.ttlSeconds], [{ team: 'billing' }, 60]);
  });

  it('a busy thread: run suggests --multitask enqueue, threads rm suggests cancelling the run', async () => {
    const thread = (await runCli(['threads', 'create'], env())).stdout.trim();
    const runId = await backgroundRun('slow', { input: 'hold on', threadId: thread });
    await server.slow.started;

    const run = await runCli(['run', 'support', 'hi', '--thread', thread], env());
    assert.equal(run.code, 1);
    const [error, hint, ...rest] = run.stderr.trimEnd().split('\n');
    assert.match(error!, /^error: THREAD_BUSY: /);
    assert.equal(
      hint,
      'hint: another run holds the thread: add --multitask enqueue to run after it (or --multitask interrupt to stop it)',
    );
    assert.deepEqual(rest, []);

    const rm = await runCli(['threads', 'rm', thread], env());
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /^error: THREAD_BUSY: .*\nhint: .*`agentpool runs cancel <run>`\n$/);

    // runs get shows it running; cancel ends it; follow then reports how it ended
    const get = await runCli(['runs', 'get', runId, '--json'], env());
    assert.equal((JSON.parse(get.stdout) as { status: string }).status, 'running');
    const cancel = await runCli(['runs', 'cancel', runId], env());
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `cancelled ${runId}\n`);
    assert.match(cancel.stderr, new RegExp(`^run ${runId} cancelled in \\d+ steps?, .*thread ${thread}\\n$`));

    const follow = await runCli(['runs', 'follow', runId], env());
    assert.equal(follow.code, 1);
    assert.match(follow.stderr, /\nerror: RUN_CANCELLED: the run was cancelled\n$/);

    const again = await runCli(['runs', 'cancel', runId], env());
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: RUN_NOT_ACTIVE: /);

    // the thread is free again
    assert.equal((await runCli(['threads', 'rm', thread], env())).code, 0);
  });

  it('runs follow prints a background run as `run` would, to its end; runs get shows the record', async () => {
    const runId = await backgroundRun('slow', { input: 'what is 6*7' });
    const following = runCli(['runs', 'follow', runId], env());
    server.slow.release();
    const follow = await following;
    assert.equal(follow.code, 0, follow.stderr);
    const record = JSON.parse((await runCli(['runs', 'get', runId, '--json'], env())).stdout) as {
      status: string;
      output: string;
    };
    assert.equal(record.status, 'succeeded');
    assert.equal(follow.stdout, `${record.output}\n`);
    assert.match(
      follow.stderr,
      new RegExp(`run ${runId} succeeded in \\d+ steps?, \\d+ in / \\d+ out tokens\\n$`),
    );

    const yaml = await runCli(['runs', 'get', runId], env());
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, new RegExp(`^id: ${runId}\\n`));
    assert.match(yaml.stdout, /\nstatus: succeeded\n/);
    assert.match(yaml.stdout, /\nfinishedAt: \d{4}-\d\d-\d\dT[\d:.]+Z\n/);

    // --after skips what was already seen; past the end, the record says how the run ended
    const tail = await runCli(['runs', 'follow', runId, '--after', '1000'], env());
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout, '');
    assert.match(tail.stderr, new RegExp(`^run ${runId} succeeded in \\d+ steps?, .*\\n$`));

    const missing = await runCli(['runs', 'get', 'run_missing'], env());
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: RUN_NOT_FOUND: /);
  });
});

describe('agentpool runs follow, against a fake server', () => {
  const run = {
    id: 'run_1',
    status: 'running',
    threadId: null,
    steps: 0,
    inputTokens: 0,
    outputTokens: 0,
    error: null,
  };
  const sse = (res: ServerResponse, events: [number, object][]) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const [id, event] of events) {
      res.write(`id: ${id}\nevent: ${(event as { type: string }).type}\ndata: ${JSON.stringify(event)}\n\n`);
    }
    res.end();
  };

  it('resumes after the last event printed when the stream breaks off, losing nothing', async () => {
    const lastEventIds: (string | undefined)[] = [];
    const fake = await fakeServer((req, res) => {
      lastEventIds.push(req.headers['last-event-id'] as string | undefined);
      if (lastEventIds.length === 1) {
        sse(res, [
          [1, { type: 'run.started', run }],
          [2, { type: 'text.delta', delta: 'hello ' }],
        ]);
      } else {
        sse(res, [
          [3, { type: 'text.delta', delta: 'world' }],
          [4, { type: 'run.finished', run: { ...run, status: 'succeeded', steps: 1 } }],
        ]);
      }
    });
    try {
      const { code, stdout, stderr } = await runCli(['runs', 'follow', 'run_1'], { AGENTPOOL_URL: fake.url });
      assert.equal(code, 0, stderr);
      // The note on stderr ends the line of text first, as tool calls do, so a terminal shows both.
      assert.equal(stdout, 'hello \nworld\n');
      assert.deepEqual(stderr.trimEnd().split('\n'), [
        '(the event stream broke off after event 2; resuming)',
        'run run_1 succeeded in 1 step, 0 in / 0 out tokens',
      ]);
      assert.deepEqual(lastEventIds, [undefined, '2']);
      assert.deepEqual(fake.requests, ['GET /v1/runs/run_1/events', 'GET /v1/runs/run_1/events']);
    } finally {
      await fake.close();
    }
  });

  it('--after starts after that event, and a stream that keeps ending empty is given up with exit 1', async () => {
    const lastEventIds: (string | undefined)[] = [];
    const fake = await fakeServer((req, res) => {
      if (req.url === '/v1/runs/run_1') {
        // still running, says its record
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(run));
        return;
      }
      lastEventIds.push(req.headers['last-event-id'] as string | undefined);
      sse(res, []);
    });
    try {
      const { code, stderr } = await runCli(['runs', 'follow', 'run_1', '--after', '7'], {
        AGENTPOOL_URL: fake.url,
      });
      assert.equal(code, 1);
      assert.match(
        stderr,
        /\nerror: the event stream of run_1 ended 6 times in a row without a new event before the run finished\n$/,
      );
      assert.deepEqual(lastEventIds, ['7', '7', '7', '7', '7', '7']);
    } finally {
      await fake.close();
    }
  });
});
