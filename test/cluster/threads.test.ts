/**
 * One run per thread across three `agentpool serve` processes: while node A runs a slow reply on
 * thread T, `reject` through B is refused 409 THREAD_BUSY, `enqueue` runs sent to A, B and C run
 * after it in the order they arrived, and `interrupt` through C stops the run A holds.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { type ApiRun, clusterForSuite } from '../support/cluster.ts';
import type { FakeChatRequest, FakeReply } from '../support/fake-openai.ts';

const MODEL = 'openai-compatible/fake-model';

/** The last user message of a request. */
function lastUser(req: FakeChatRequest): string {
  const user = req.messages.filter((m) => m.role === 'user').at(-1);
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content);
}

/** Replies `done: <input>`, after `slow <ms>` milliseconds when the input starts so. */
function reply(req: FakeChatRequest): FakeReply {
  const input = lastUser(req);
  const slow = /^slow (\d+)/.exec(input);
  const text = { text: `done: ${input}` };
  return slow === null ? text : { delayMs: Number(slow[1]), then: text };
}

describe('one run per thread across three nodes', () => {
  const suite = clusterForSuite({ label: 'threads', fake: { handler: reply } });

  it('reject is refused on B, enqueue runs on A, B and C in arrival order, interrupt on C stops A', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'talker', model: MODEL, instructions: 'Talk.' });
    const created = await c.call(0, 'POST', '/v1/threads', {});
    assert.equal(created.status, 201, await created.clone().text());
    const thread = ((await created.json()) as { id: string }).id;
    const run = (i: number, input: string, multitask?: string) =>
      c.call(i, 'POST', '/v1/agents/talker/runs', {
        input,
        threadId: thread,
        ...(multitask !== undefined && { multitask }),
      });
    const seen = (text: string) => c.fake.requests.some((r) => lastUser(r) === text);
    const until = async (ready: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!ready() && Date.now() < deadline) await sleep(10);
      assert.ok(ready(), `timed out waiting for ${what}`);
    };

    // A holds the thread with a slow reply.
    const first = run(0, 'slow 2500 first');
    await until(() => seen('slow 2500 first'), "A's model call");

    const refused = await run(1, 'refused', 'reject');
    assert.equal(refused.status, 409);
    const error = ((await refused.json()) as { error: { code: string } }).error;
    assert.equal(error.code, 'THREAD_BUSY');

    // Three enqueued runs, through A, B and C, each sent once the one before is waiting.
    const queued: Promise<Response>[] = [];
    for (const [k, i] of [0, 1, 2].entries()) {
      queued.push(run(i, `queued ${k + 1}`, 'enqueue'));
      await sleep(300);
    }
    assert.ok(!seen('queued 1'), 'no queued run reached the model while A held the thread');
    const firstRun = (await (await first).json()) as ApiRun;
    assert.equal(firstRun.status, 'succeeded', JSON.stringify(firstRun));
    const queuedRuns = await Promise.all(queued.map(async (r) => (await r).json() as Promise<ApiRun>));
    for (const r of queuedRuns) assert.equal(r.status, 'succeeded', JSON.stringify(r));
    const order = c.fake.requests.map(lastUser).filter((t) => t.startsWith('queued'));
    assert.deepEqual(order, ['queued 1', 'queued 2', 'queued 3'], 'the model saw them in arrival order');

    // An interrupt through C stops the slow run A holds.
    const held = run(0, 'slow 20000 held');
    await until(() => seen('slow 20000 held'), "A's second model call");
    const started = Date.now();
    const interrupting = (await (await run(2, 'interrupting', 'interrupt')).json()) as ApiRun;
    const heldRun = (await (await held).json()) as ApiRun;
    assert.equal(heldRun.status, 'interrupted', JSON.stringify(heldRun));
    assert.equal(interrupting.status, 'succeeded', JSON.stringify(interrupting));
    assert.equal(interrupting.output, 'done: interrupting');
    assert.ok(Date.now() - started < 10_000, 'the held run stopped long before its reply');

    const messages = (await (await c.call(1, 'GET', `/v1/threads/${thread}/messages?limit=100`)).json()) as {
      data: { role: string; content: unknown; seq: number }[];
    };
    const text = (content: unknown): string =>
      typeof content === 'string'
        ? content
        : (content as { text?: string }[]).map((part) => part.text ?? '').join('');
    const users = messages.data.filter((m) => m.role === 'user').map((m) => text(m.content));
    assert.deepEqual(users, [
      'slow 2500 first',
      'queued 1',
      'queued 2',
      'queued 3',
      'slow 20000 held',
      'interrupting',
    ]);
    const seqs = messages.data.map((m) => m.seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, k) => k + 1),
      'seqs without gaps',
    );
    const answers = messages.data.filter((m) => m.role === 'assistant').map((m) => text(m.content));
    assert.deepEqual(answers, [
      'done: slow 2500 first',
      'done: queued 1',
      'done: queued 2',
      'done: queued 3',
      '[no answer: the run ended with RUN_INTERRUPTED]', // the held run's place on the thread
      'done: interrupting',
    ]);
  });

  it('a run asking for a new thread creates it with its record (fenced), and every node reads it', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'opener', model: MODEL, instructions: 'Talk.' });
    const res = await c.call(1, 'POST', '/v1/agents/opener/runs', {
      input: 'hello there',
      thread: { metadata: { n: 1 } },
    });
    assert.equal(res.status, 200, await res.clone().text());
    const run = (await res.json()) as ApiRun & { threadId: string };
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    const thread = (await (await c.call(2, 'GET', `/v1/threads/${run.threadId}`)).json()) as {
      metadata: object;
      messageCount: number;
    };
    assert.deepEqual([thread.metadata, thread.messageCount], [{ n: 1 }, 2]);
    const next = await c.call(0, 'POST', '/v1/agents/opener/runs', {
      input: 'and again',
      threadId: run.threadId,
    });
    assert.equal(((await next.json()) as ApiRun).status, 'succeeded');
    const sent = c.fake.requests.at(-1)?.messages.map((m) => m.role);
    assert.deepEqual(
      sent,
      ['system', 'user', 'assistant', 'user'],
      'the next run, on another node, sends the history',
    );
    const background = await c.call(2, 'POST', '/v1/agents/opener/runs', {
      input: 'later',
      thread: {},
      background: true,
    });
    assert.equal(background.status, 202, await background.clone().text());
    const accepted = (await background.json()) as ApiRun & { id: string; threadId: string };
    const deadline = Date.now() + 10_000;
    let status = accepted.status;
    while (status !== 'succeeded' && Date.now() < deadline) {
      await sleep(50);
      status = ((await (await c.call(0, 'GET', `/v1/runs/${accepted.id}`)).json()) as ApiRun).status;
    }
    assert.equal(status, 'succeeded');
    const kept = (await (await c.call(1, 'GET', `/v1/threads/${accepted.threadId}`)).json()) as {
      messageCount: number;
    };
    assert.equal(kept.messageCount, 2);
  });
});
