/**
 * `agentpool run`: the SSE parser on its own, then the command as a child process against
 * `agentpool serve` on a real port (stateless runs, threads, errors) and against a fake server
 * for a run that fails and a stream that is cut short.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { parseSse, type SseMessage } from '../../src/cli/http-client.ts';
import { cli, fakeServer, freePort, serverForSuite } from '../support/cli-process.ts';

async function collect(chunks: string[]): Promise<SseMessage[]> {
  async function* source() {
    yield* chunks;
  }
  const events: SseMessage[] = [];
  for await (const event of parseSse(source())) events.push(event);
  return events;
}

describe('parseSse', () => {
  it('splits events on blank lines, whatever the chunking and line endings', async () => {
    const wire =
      'id: 1\nevent: a\ndata: {"x":1}\n\n: a comment\r\nid: 2\r\nevent: b\r\ndata: one\r\ndata:two\r\n\r\n';
    const expected = [
      { id: '1', event: 'a', data: '{"x":1}' },
      { id: '2', event: 'b', data: 'one\ntwo' },
    ];
    assert.deepEqual(await collect([wire]), expected);
    // one character at a time, so every line and `\r\n` is split across chunks
    assert.deepEqual(await collect([...wire]), expected);
  });

  it('defaults the event type to message, skips events without data, drops an unterminated one', async () => {
    assert.deepEqual(await collect(['data: x\n\nevent: empty\n\ndata: cut off\n']), [
      { id: undefined, event: 'message', data: 'x' },
    ]);
  });
});

describe('agentpool run, against agentpool serve', () => {
  const server = serverForSuite();

  it('streams the answer to stdout, tool calls and a summary to stderr, exit 0', async () => {
    const { code, stdout, stderr } = await cli(['run', 'support', 'what is 17*23'], server.env);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, '[demo] 17*23 = 391\n');
    const lines = stderr.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), [
      '→ calculator({"expression":"17*23"})',
      '← {"expression":"17*23","result":391}',
    ]);
    assert.match(lines[2]!, /^run run_\w+ succeeded in 2 steps, \d+ in \/ \d+ out tokens$/);
    assert.equal(lines.length, 3);
  });

  it('--new-thread creates a thread and prints its id; --thread continues it', async () => {
    const first = await cli(['run', 'support', 'what is 2+2', '--new-thread'], server.env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /= 4\n$/);
    const threadId = /^thread (thr_\w+) {2}\(continue with --thread \1\)$/m.exec(first.stderr)?.[1];
    assert.ok(threadId !== undefined, first.stderr);
    assert.match(first.stderr, new RegExp(`succeeded in \\d+ steps?, .*, thread ${threadId}\\n$`));

    const second = await cli(
      ['run', 'support', 'what is 17*23', '--thread', threadId, '--multitask', 'enqueue'],
      server.env,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /391/);
    assert.match(second.stderr, new RegExp(`, thread ${threadId}\\n$`));
    assert.doesNotMatch(second.stderr, /continue with/);

    const messages = (await (await fetch(`${server.url}/v1/threads/${threadId}/messages`)).json()) as {
      data: { role: string }[];
    };
    assert.ok(messages.data.length >= 4, JSON.stringify(messages));
    const text = JSON.stringify(messages.data);
    assert.ok(text.includes('what is 2+2') && text.includes('what is 17*23'), text);
    const runs = (await (await fetch(`${server.url}/v1/threads/${threadId}/runs`)).json()) as {
      data: unknown[];
    };
    assert.equal(runs.data.length, 2);
  });

  it('an unknown agent or thread exits 1 with the error code', async () => {
    const agent = await cli(['run', 'nobody', 'hi'], server.env);
    assert.equal(agent.code, 1);
    assert.equal(agent.stdout, '');
    assert.equal(agent.stderr, 'error: AGENT_NOT_FOUND: agent "nobody" not found\n');

    const thread = await cli(['run', 'support', 'hi', '--thread', 'thr_missing'], server.env);
    assert.equal(thread.code, 1);
    assert.match(thread.stderr, /^error: THREAD_NOT_FOUND: /);
  });

  it('--thread with --new-thread, or an unknown --multitask, is a usage error (exit 2)', async () => {
    const both = await cli(['run', 'support', 'hi', '--thread', 'thr_x', '--new-thread'], server.env);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /cannot be used with/);
    const multitask = await cli(['run', 'support', 'hi', '--multitask', 'queue'], server.env);
    assert.equal(multitask.code, 2);
    assert.match(multitask.stderr, /Allowed choices are reject, enqueue, interrupt/);
  });
});

describe('agentpool run, against a fake server', () => {
  const run = {
    id: 'run_1',
    status: 'running',
    threadId: null,
    steps: 0,
    inputTokens: 0,
    outputTokens: 0,
    error: null,
  };
  const sse = (res: ServerResponse, events: object[]) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    events.forEach((event, i) =>
      res.write(
        `id: ${i + 1}\nevent: ${(event as { type: string }).type}\ndata: ${JSON.stringify(event)}\n\n`,
      ),
    );
    res.end();
  };

  it('a failed run prints what streamed, a summary, and exits 1 with its error code', async () => {
    const failed = { ...run, status: 'failed', steps: 1, inputTokens: 7, outputTokens: 2 };
    const fake = await fakeServer((_req, res) =>
      sse(res, [
        { type: 'run.started', run },
        { type: 'text.delta', delta: 'partial' },
        { type: 'tool.call', toolName: 'lookup', input: { q: 'x' } },
        {
          type: 'tool.result',
          toolName: 'lookup',
          ok: false,
          error: { code: 'TOOL_FAILED', message: 'nope' },
        },
        { type: 'run.failed', run: failed, error: { code: 'MODEL_ERROR', message: 'the model broke' } },
      ]),
    );
    try {
      const { code, stdout, stderr } = await cli(['run', 'a', 'hi', '--url', fake.url], {});
      assert.equal(code, 1);
      assert.equal(stdout, 'partial\n');
      assert.deepEqual(stderr.trimEnd().split('\n'), [
        '→ lookup({"q":"x"})',
        '← lookup failed: TOOL_FAILED: nope',
        'run run_1 failed in 1 step, 7 in / 2 out tokens',
        'error: MODEL_ERROR: the model broke',
      ]);
    } finally {
      await fake.close();
    }
  });

  it('a stream that ends before the run finished exits 1 and says how to follow the run', async () => {
    const fake = await fakeServer((_req, res) =>
      sse(res, [
        { type: 'run.started', run },
        { type: 'text.delta', delta: 'half an ans' },
      ]),
    );
    try {
      const { code, stdout, stderr } = await cli(['run', 'a', 'hi'], { AGENTPOOL_URL: fake.url });
      assert.equal(code, 1);
      assert.equal(stdout, 'half an ans\n');
      assert.equal(
        stderr,
        'error: the event stream ended before the run finished; follow it with `agentpool runs follow run_1 --after 2`\n',
      );
    } finally {
      await fake.close();
    }
  });

  it('an unreachable server exits 1 with a clear message', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { code, stderr } = await cli(['run', 'support', 'hi', '--new-thread'], { AGENTPOOL_URL: url });
    assert.equal(code, 1);
    assert.ok(
      stderr.startsWith(`error: cannot reach agentpool at ${url}; is \`agentpool serve\` running?`),
      stderr,
    );
  });
});
