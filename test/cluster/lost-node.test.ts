/**
 * A lost node: `kill -9` of a node with a wait-mode run in flight. Another node sweeps it: the run
 * ends `interrupted` with a reason naming the node, its thread takes a new run, and
 * `GET /v1/cluster` lists the nodes left. The time from the kill to each recovery is printed.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { type ApiRun, clusterForSuite, pollRun, type TestCluster } from '../support/cluster.ts';
import type { FakeChatRequest, FakeReply } from '../support/fake-openai.ts';

const MODEL = 'openai-compatible/fake-model';

/** `hold …` never gets an answer; anything else does at once. */
function reply(req: FakeChatRequest): FakeReply {
  return JSON.stringify(req.messages.at(-1)?.content ?? '').includes('hold')
    ? { hang: true }
    : { text: 'answered' };
}

interface NodeInfo {
  id: string;
  address: string | null;
  startedAt: number;
  heartbeatAt: number;
  runsInFlight: number;
  liveInstances: number;
}

/** `GET /v1/cluster` through node i, once it lists `count` nodes. */
async function clusterNodes(
  c: TestCluster,
  i: number,
  count: number,
  timeoutMs: number,
): Promise<NodeInfo[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const response = await c.call(i, 'GET', '/v1/cluster');
    assert.equal(response.status, 200);
    const body = (await response.json()) as { mode: string; node: string; data: NodeInfo[] };
    assert.equal(body.mode, 'cluster');
    assert.equal(body.node, c.nodes[i]?.id);
    if (body.data.length === count) return body.data;
    last = body;
    await sleep(200);
  }
  return assert.fail(`GET /v1/cluster never listed ${count} nodes: ${JSON.stringify(last)}`);
}

describe('a lost node', () => {
  const suite = clusterForSuite({ label: 'lost', fake: { handler: reply } });

  it('kill -9 with a wait-mode run in flight: the run ends interrupted naming the node, its thread runs again', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'holder', model: MODEL, instructions: 'Hold on.' });
    const before = await clusterNodes(c, 0, 3, 10_000);
    assert.deepEqual(before.map((n) => n.id).sort(), c.nodes.map((n) => n.id).sort());
    for (const n of before) {
      const node = c.nodes.find((x) => x.id === n.id);
      assert.equal(n.address, `http://127.0.0.1:${node?.port}`);
      assert.ok(
        Number.isInteger(n.startedAt) && n.startedAt > 0 && n.startedAt <= n.heartbeatAt,
        JSON.stringify(n),
      );
      assert.ok(Math.abs(Date.now() - n.heartbeatAt) < 10_000, `a current heartbeat: ${JSON.stringify(n)}`);
      assert.ok(Number.isInteger(n.runsInFlight) && Number.isInteger(n.liveInstances), JSON.stringify(n));
    }

    const thread = ((await (await c.call(0, 'POST', '/v1/threads', {})).json()) as { id: string }).id;
    const victim = 1;
    const inFlight = c.call(victim, 'POST', '/v1/agents/holder/runs', {
      input: 'hold this',
      threadId: thread,
    });
    inFlight.catch(() => undefined); // the connection dies with the node
    const deadline = Date.now() + 10_000;
    while (c.fake.requests.length === 0 && Date.now() < deadline) await sleep(20);
    assert.equal(c.fake.requests.length, 1, 'the run reached the provider');
    const [row] = await c.query<{ id: string }>(`SELECT id FROM runs WHERE thread_id = $1`, [thread]);
    const runId = row?.id ?? assert.fail('the run is recorded');
    // The victim reports the run in flight with its next heartbeat.
    const busy = await clusterNodes(c, 2, 3, 5000);
    assert.ok(
      busy.some((n) => n.id === c.nodes[victim]?.id),
      'the victim is listed',
    );

    const killedAt = Date.now();
    await c.kill(victim, 'SIGKILL');
    await assert.rejects(inFlight, 'the client lost its connection');

    const ended = await pollRun(c, 0, runId, (r) => r.status !== 'running' && r.status !== 'queued', 60_000);
    const toTerminal = (Date.now() - killedAt) / 1000;
    assert.equal(ended.status, 'interrupted', JSON.stringify(ended));
    assert.match(ended.error?.message ?? '', new RegExp(`node "${c.nodes[victim]?.id}"`));

    // The thread takes a new run once the dead node's lease expired.
    let next: ApiRun | undefined;
    while (next === undefined && Date.now() - killedAt < 60_000) {
      const response = await c.call(2, 'POST', '/v1/agents/holder/runs', { input: 'next', threadId: thread });
      if (response.status === 200) next = (await response.json()) as ApiRun;
      else {
        const error = ((await response.json()) as { error: { code: string } }).error;
        assert.equal(error.code, 'THREAD_BUSY', JSON.stringify(error));
        await sleep(250);
      }
    }
    const toThreadFree = (Date.now() - killedAt) / 1000;
    assert.equal(next?.status, 'succeeded', JSON.stringify(next));

    const after = await clusterNodes(c, 0, 2, 30_000);
    const toForgotten = (Date.now() - killedAt) / 1000;
    assert.deepEqual(after.map((n) => n.id).sort(), [c.nodes[0]?.id, c.nodes[2]?.id].sort());
    console.log(
      `kill -9 of ${c.nodes[victim]?.id}: its run interrupted after ${toTerminal.toFixed(1)} s, ` +
        `its thread took a new run after ${toThreadFree.toFixed(1)} s, GET /v1/cluster listed 2 nodes after ${toForgotten.toFixed(1)} s`,
    );
    assert.ok(toTerminal < 60 && toThreadFree < 60, 'all within a minute');
  });
});
