/**
 * The crash test: `agentpool serve` as a child process on a SQLite data directory, 50 runs in
 * flight over HTTP against a slow fake provider, then `kill -9`. Restarted on the same directory,
 * the server must still have every agent and every message committed before the kill; every run
 * must be terminal (the ones in flight `interrupted` with RUN_INTERRUPTED); and no thread may
 * show two runs at once: their [startedAt, finishedAt] intervals are disjoint and their
 * messages never interleave. Wait-mode runs in flight at the kill: one still in its first model
 * call leaves nothing (docs/runs.md, "What a crash may cost"); one past its first step keeps it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { MessageRecord, RunRecord } from '../../src/store/ports.ts';
import {
  type FakeChatRequest,
  type FakeOpenAI,
  type FakeReply,
  startFakeOpenAI,
} from '../support/fake-openai.ts';
import { type CliChild, freePort, spawnCli } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';

const THREADS = 10;
const IN_FLIGHT_RUNS = 50;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** Polls `url` until it answers 200, the child exits, or 30 s pass. */
async function waitReady(url: string, child: CliChild): Promise<void> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  assert.fail(`${url} never answered; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
}

/** The model calls a hanging reply answered, as `<input>` or `<input> after tool`. */
const hanging = new Set<string>();

/**
 * Slow replies: 300–800 ms each; inputs starting with "calc" make one calculator call first.
 * Inputs starting with "hang" hang; "calc-hang" hangs after its tool call.
 */
function slowReply(request: FakeChatRequest): FakeReply {
  const delayMs = 300 + Math.floor(Math.random() * 500);
  const last = request.messages[request.messages.length - 1];
  const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
  const text = typeof lastUser?.content === 'string' ? lastUser.content : '';
  if (text === 'calc-hang') {
    if (last?.role !== 'tool')
      return { toolCalls: [{ name: 'calculator', arguments: { expression: '2 + 2' } }] };
    hanging.add(`${text} after tool`);
    return { hang: true };
  }
  if (text.startsWith('hang')) {
    hanging.add(text);
    return { hang: true };
  }
  if (last?.role !== 'tool' && text.startsWith('calc')) {
    return {
      delayMs,
      then: { toolCalls: [{ name: 'calculator', arguments: { expression: '17 * 23' } }] },
    };
  }
  return { delayMs, then: { text: `Answer to ${text}` } };
}

describe('kill -9 with 50 runs in flight, then restart on the same data directory', () => {
  const tmp = tempDir('agentpool-crash-');
  const dataDir = join(tmp.dir, 'data');
  const agentsFile = join(tmp.dir, 'agents.json');
  const children: CliChild[] = [];
  let fake: FakeOpenAI;
  let env: Record<string, string>;
  let base = '';

  async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${base}${path}`, {
      method,
      ...(body !== undefined && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  async function ok<T>(method: string, path: string, body?: unknown, status = 200): Promise<T> {
    const response = await api<T>(method, path, body);
    assert.equal(response.status, status, `${method} ${path}: ${JSON.stringify(response.body)}`);
    return response.body;
  }

  /** Every page of a list route. */
  async function all<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const page = await ok<{ data: T[]; nextCursor: string | null }>('GET', `${path}?limit=1000${query}`);
      out.push(...page.data);
      cursor = page.nextCursor ?? null;
    } while (cursor !== null);
    return out;
  }

  async function boot(): Promise<CliChild> {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const child = spawnCli(
      ['serve', '--port', String(port), '--data-dir', dataDir, '--agents-file', agentsFile],
      env,
    );
    children.push(child);
    await waitReady(`${base}/healthz`, child);
    return child;
  }

  before(async () => {
    fake = await startFakeOpenAI({ handler: slowReply, maxRecorded: 0 });
    env = { AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: fake.url, AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'test' };
    writeFileSync(
      agentsFile,
      JSON.stringify({
        agents: [
          {
            name: 'slow',
            instructions: 'You answer slowly.',
            model: 'openai-compatible/slow',
            tools: ['builtin:calculator'],
            maxSteps: 4,
          },
          { name: 'plain', instructions: 'You answer slowly too.', model: 'openai-compatible/slow' },
        ],
      }),
    );
  });

  after(async () => {
    for (const child of children) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await child.exited;
    }
    await fake?.close();
    tmp.cleanup();
  });

  it(
    'keeps agents and committed messages, ends every run, and never lets two runs share a thread',
    { timeout: 180_000 },
    async () => {
      const first = await boot();

      // An agent made over HTTP, besides the two of the agents file.
      await ok(
        'PUT',
        '/v1/agents/made-over-http',
        {
          instructions: 'Made by PUT.',
          model: 'openai-compatible/slow',
        },
        201,
      );
      const agentsBefore = await all<{ name: string; version: number }>('/v1/agents');
      assert.deepEqual(agentsBefore.map((a) => a.name).sort(), ['made-over-http', 'plain', 'slow']);

      // Runs that finish before the kill, on quiet threads nobody touches afterwards.
      const quiet = await Promise.all(
        Array.from({ length: 3 }, () => ok<{ id: string }>('POST', '/v1/threads', {}, 201)),
      );
      const finished = await Promise.all(
        quiet.map((thread, i) =>
          ok<RunRecord>('POST', '/v1/agents/slow/runs', {
            input: i === 0 ? 'calc first' : `hello ${i}`,
            threadId: thread.id,
          }),
        ),
      );
      for (const run of finished) assert.equal(run.status, 'succeeded', JSON.stringify(run));
      const quietMessages = new Map<string, MessageRecord[]>();
      for (const thread of quiet)
        quietMessages.set(thread.id, await all(`/v1/threads/${thread.id}/messages`));

      // the "calc" run made a tool call: its step was committed before its answer
      assert.ok(quietMessages.get(quiet[0]?.id ?? '')?.some((m) => m.role === 'tool'));

      // 50 background runs over 10 busy threads, queued behind each other.
      const busy = await Promise.all(
        Array.from({ length: THREADS }, () => ok<{ id: string }>('POST', '/v1/threads', {}, 201)),
      );
      const accepted = await Promise.all(
        Array.from({ length: IN_FLIGHT_RUNS }, (_, i) =>
          ok<RunRecord>(
            'POST',
            `/v1/agents/${i % 5 === 4 ? 'plain' : 'slow'}/runs`,
            {
              input: i % 3 === 0 ? `calc run ${i}` : `run ${i}`,
              threadId: busy[i % THREADS]?.id,
              multitask: 'enqueue',
              background: true,
            },
            202,
          ),
        ),
      );
      const runIds = [...finished.map((r) => r.id), ...accepted.map((r) => r.id)];

      // Wait until some background runs finished and several are running, then kill -9.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const records = await Promise.all(accepted.map((r) => ok<RunRecord>('GET', `/v1/runs/${r.id}`)));
        const counts = records.map((r) => r.status);
        const running = counts.filter((s) => s === 'running').length;
        const succeeded = counts.filter((s) => s === 'succeeded').length;
        if (running >= 5 && succeeded >= 5) break;
        assert.ok(Date.now() < deadline, `runs never got going: ${JSON.stringify(counts)}`);
        await sleep(50);
      }
      // Wait-mode runs in flight at the kill: three in their first model call, one after its first
      // step (a tool call, committed before the model is called again).
      const waiting = await Promise.all(
        Array.from({ length: 4 }, () => ok<{ id: string }>('POST', '/v1/threads', {}, 201)),
      );
      const waitInputs = ['hang-0', 'hang-1', 'hang-2', 'calc-hang'];
      waitInputs.forEach((input, i) => {
        void api('POST', '/v1/agents/slow/runs', { input, threadId: waiting[i]?.id }).catch(() => undefined);
      });
      const expected = ['hang-0', 'hang-1', 'hang-2', 'calc-hang after tool'];
      while (!expected.every((call) => hanging.has(call))) {
        assert.ok(Date.now() < deadline, `wait runs never reached their calls: ${[...hanging].join(', ')}`);
        await sleep(20);
      }

      // What the busy threads had committed, read before the kill (a prefix of what is there after).
      const busyMessages = new Map<string, MessageRecord[]>();
      for (const thread of busy) busyMessages.set(thread.id, await all(`/v1/threads/${thread.id}/messages`));
      const succeededBeforeKill = new Set(
        (await Promise.all(accepted.map((r) => ok<RunRecord>('GET', `/v1/runs/${r.id}`))))
          .filter((r) => r.status === 'succeeded')
          .map((r) => r.id),
      );

      first.process.kill('SIGKILL');
      await first.exited;
      assert.equal(first.process.signalCode, 'SIGKILL');

      const second = await boot();
      assert.match(second.stdout(), /recovered: \d+ run\(s\)/);

      // Every agent is there, at the version it had.
      const agentsAfter = await all<{ name: string; version: number }>('/v1/agents');
      assert.deepEqual(
        agentsAfter.map((a) => [a.name, a.version]).sort(),
        agentsBefore.map((a) => [a.name, a.version]).sort(),
      );

      // Every message committed before the kill is there, with the same seq.
      const pick = (m: MessageRecord) => ({
        id: m.id,
        seq: m.seq,
        role: m.role,
        runId: m.runId,
        content: m.content,
      });
      for (const [threadId, before] of quietMessages) {
        const now = await all<MessageRecord>(`/v1/threads/${threadId}/messages`);
        assert.deepEqual(now.map(pick), before.map(pick), `quiet thread ${threadId}`);
      }
      for (const [threadId, before] of busyMessages) {
        const now = await all<MessageRecord>(`/v1/threads/${threadId}/messages`);
        assert.ok(now.length >= before.length, `thread ${threadId} lost messages`);
        assert.deepEqual(now.slice(0, before.length).map(pick), before.map(pick), `busy thread ${threadId}`);
      }

      // Every run is terminal; the ones in flight at the kill are interrupted.
      const runs = await Promise.all(runIds.map((id) => ok<RunRecord>('GET', `/v1/runs/${id}`)));
      let interrupted = 0;
      for (const run of runs) {
        assert.ok(TERMINAL.has(run.status), `${run.id} is ${run.status}`);
        if (finished.some((r) => r.id === run.id) || succeededBeforeKill.has(run.id)) {
          assert.equal(run.status, 'succeeded', `${run.id} had succeeded before the kill`);
        } else if (run.status !== 'succeeded') {
          // in flight at the kill (a run may have finished between the last poll and the kill)
          assert.equal(run.status, 'interrupted', JSON.stringify(run));
          assert.equal(run.error?.code, 'RUN_INTERRUPTED');
          interrupted++;
        }
      }
      assert.ok(interrupted >= 5, `only ${interrupted} runs were interrupted`);

      // The wait runs in their first call left nothing: no run, no message on their threads.
      for (const thread of waiting.slice(0, 3)) {
        assert.deepEqual(await all(`/v1/threads/${thread.id}/runs`), [], `thread ${thread.id} has a run`);
        assert.deepEqual(
          await all(`/v1/threads/${thread.id}/messages`),
          [],
          `thread ${thread.id} has messages`,
        );
      }
      // The one past its first step kept it: its input, the tool call and its result; interrupted.
      const stepped = waiting[3]?.id ?? '';
      const [steppedRun, ...others] = await all<RunRecord>(`/v1/threads/${stepped}/runs`);
      assert.equal(others.length, 0);
      assert.equal(steppedRun?.status, 'interrupted', JSON.stringify(steppedRun));
      assert.equal(steppedRun?.steps, 1);
      const kept = await all<MessageRecord>(`/v1/threads/${stepped}/messages`);
      assert.deepEqual(
        kept.map((m) => [m.seq, m.role, m.runId]),
        [
          [1, 'user', steppedRun?.id],
          [2, 'assistant', steppedRun?.id],
          [3, 'tool', steppedRun?.id],
        ],
      );

      // No thread had two runs at once: intervals are disjoint, messages of runs never interleave.
      for (const thread of [...quiet, ...busy]) {
        const threadRuns = await all<RunRecord>(`/v1/threads/${thread.id}/runs`);
        const started = threadRuns
          .filter((r) => r.startedAt !== null)
          .sort((a, b) => (a.startedAt as number) - (b.startedAt as number));
        for (let i = 1; i < started.length; i++) {
          const prev = started[i - 1] as RunRecord;
          const cur = started[i] as RunRecord;
          assert.ok(prev.finishedAt !== null, `${prev.id} has no finishedAt`);
          assert.ok(
            (cur.startedAt as number) >= prev.finishedAt,
            `thread ${thread.id}: ${cur.id} started at ${cur.startedAt} before ${prev.id} finished at ${prev.finishedAt}`,
          );
        }
        const messages = await all<MessageRecord>(`/v1/threads/${thread.id}/messages`);
        assert.deepEqual(
          messages.map((m) => m.seq),
          messages.map((_, i) => i + 1),
          `thread ${thread.id}: seq has gaps`,
        );
        const seen = new Set<string | null>();
        let current: string | null | undefined;
        for (const message of messages) {
          if (message.runId === current) continue;
          assert.ok(!seen.has(message.runId), `thread ${thread.id}: messages of ${message.runId} interleave`);
          seen.add(message.runId);
          current = message.runId;
        }
        // every run with messages on this thread is one of this thread's runs
        const ids = new Set(threadRuns.map((r) => r.id));
        for (const runId of seen) assert.ok(runId !== null && ids.has(runId), `unknown run ${runId}`);
      }

      // The restarted server works: a new run on a busy thread succeeds.
      const again = await ok<RunRecord>('POST', '/v1/agents/plain/runs', {
        input: 'after the crash',
        threadId: busy[0]?.id,
      });
      assert.equal(again.status, 'succeeded');
    },
  );
});
