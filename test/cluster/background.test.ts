/**
 * Background runs across three `agentpool serve` processes: runs accepted by any node (202) are
 * executed, by several nodes (the run records' `node_id` says which), and readable from any node;
 * a background run whose node is killed (`kill -9`) after one committed step resumes on another
 * node, after that step: the provider sees the first step's request once.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { type ApiRun, clusterForSuite, pollRun } from '../support/cluster.ts';
import type { FakeChatRequest, FakeReply } from '../support/fake-openai.ts';

const MODEL = 'openai-compatible/fake-model';

let hungOnce = false;

/**
 * `spread …`: 1 s, then an answer. `resume me`: step 1 calls the calculator; step 2 (the tool's
 * result is the last message) hangs the first time, until the node asking is killed, then answers.
 */
function reply(req: FakeChatRequest): FakeReply {
  const last = req.messages.at(-1);
  if (last?.role === 'tool') {
    if (!hungOnce) {
      hungOnce = true;
      return { hang: true };
    }
    return { text: 'resumed and done' };
  }
  const input = JSON.stringify(last?.content ?? '');
  if (input.includes('resume me'))
    return { toolCalls: [{ name: 'calculator', arguments: { expression: '6*7' } }] };
  return { delayMs: 1000, then: { text: 'spread and done' } };
}

/** Whether a request is the first step of the run started with `input` (no tool result yet). */
const firstStepOf = (input: string) => (req: FakeChatRequest) =>
  JSON.stringify(req.messages).includes(input) && !req.messages.some((m) => m.role === 'tool');

describe('background runs across three nodes', () => {
  const suite = clusterForSuite({ label: 'bg', fake: { handler: reply } });

  it('runs accepted by any node are executed, spread over the nodes and readable from any node', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'worker', model: MODEL, instructions: 'Work.' });
    const accepted = await Promise.all(
      Array.from({ length: 24 }, async (_, k) => {
        const response = await c.call(k % 3, 'POST', '/v1/agents/worker/runs', {
          input: `spread ${k}`,
          background: true,
        });
        assert.equal(response.status, 202, await response.clone().text());
        const run = (await response.json()) as ApiRun;
        assert.equal(run.status, 'queued');
        return run;
      }),
    );
    const done = await Promise.all(
      accepted.map((run, k) =>
        pollRun(c, (k + 1) % 3, run.id, (r) => r.status !== 'queued' && r.status !== 'running'),
      ),
    );
    for (const run of done) assert.equal(run.status, 'succeeded', JSON.stringify(run));
    const rows = await c.query<{ node_id: string; runs: string }>(
      `SELECT node_id, count(*) AS runs FROM runs WHERE id = ANY($1) GROUP BY node_id ORDER BY node_id`,
      [accepted.map((r) => r.id)],
    );
    console.log(`24 background runs executed by: ${rows.map((r) => `${r.node_id} ${r.runs}`).join(', ')}`);
    // A node takes 8 at once (backgroundConcurrency) and each run lasts a second: 24 need them all.
    assert.ok(rows.length >= 2, `several nodes executed some: ${JSON.stringify(rows)}`);
    for (const r of rows)
      assert.ok(
        c.nodes.some((n) => n.id === r.node_id),
        `a node of the cluster: ${r.node_id}`,
      );
  });

  it('a background run whose node is killed mid-run resumes on another node after its committed step', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'resumer', model: MODEL, instructions: 'Compute.', tools: ['calculator'] });
    const response = await c.call(0, 'POST', '/v1/agents/resumer/runs', {
      input: 'resume me',
      background: true,
    });
    assert.equal(response.status, 202);
    const accepted = (await response.json()) as ApiRun;
    // Step 1 (the tool call) is committed; step 2 hangs at the provider.
    await pollRun(
      c,
      1,
      accepted.id,
      (r) => r.status === 'running' && (r as ApiRun & { steps: number }).steps >= 1,
      20_000,
    );
    const deadline = Date.now() + 10_000;
    while (!hungOnce && Date.now() < deadline) await sleep(20);
    assert.ok(hungOnce, 'step 2 reached the provider');
    const [row] = await c.query<{ node_id: string }>('SELECT node_id FROM runs WHERE id = $1', [accepted.id]);
    const victim = c.nodes.findIndex((n) => n.id === row?.node_id);
    assert.ok(victim >= 0, `the run is held by a node: ${JSON.stringify(row)}`);

    const killedAt = Date.now();
    await c.kill(victim, 'SIGKILL');
    const other = (victim + 1) % 3;
    const finished = await pollRun(
      c,
      other,
      accepted.id,
      (r) => r.status === 'succeeded' || r.status === 'failed',
      60_000,
    );
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(
      `background run resumed and succeeded ${seconds.toFixed(1)} s after kill -9 of ${c.nodes[victim]?.id}`,
    );
    assert.equal(finished.status, 'succeeded', JSON.stringify(finished));
    assert.equal(finished.output, 'resumed and done');
    assert.ok(seconds < 60, `within 60 s (${seconds} s)`);
    const [after] = await c.query<{ node_id: string }>('SELECT node_id FROM runs WHERE id = $1', [
      accepted.id,
    ]);
    assert.notEqual(after?.node_id, c.nodes[victim]?.id, 'another node finished it');
    assert.equal(c.fake.requests.filter(firstStepOf('resume me')).length, 1, 'step 1 was not run again');
    const messages = (await (
      await c.call(other, 'GET', `/v1/threads/${accepted.threadId}/messages`)
    ).json()) as {
      data: { role: string }[];
    };
    assert.deepEqual(
      messages.data.map((m) => m.role),
      ['user', 'assistant', 'tool', 'assistant'],
      'the thread holds each step once',
    );
  });
});
