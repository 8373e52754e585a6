/**
 * Definitions across three `agentpool serve` processes on one PostgreSQL and one Redis: concurrent
 * PUTs of one name through every node make one agent, and a change made through one node is
 * served in its new version by the others within a second (their runs send the new instructions).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ApiRun, clusterForSuite } from '../support/cluster.ts';

const MODEL = 'openai-compatible/fake-model';

/** The system prompt of a chat request the fake provider saw. */
function systemPrompt(messages: readonly { role: string; content?: unknown }[]): string {
  return messages
    .filter((m) => m.role === 'system')
    .map((m) => String(m.content))
    .join('\n');
}

describe('definitions across three nodes', () => {
  // 1,000 requests at once from one address stay within the default per-address limit (1024).
  const suite = clusterForSuite({ label: 'defs' });

  it('1,000 concurrent PUTs of one name spread over the nodes make exactly one agent', async () => {
    const c = suite.cluster;
    const spec = { model: MODEL, instructions: 'You are the one and only.' };
    const answers = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const response = await c.call(i % 3, 'PUT', '/v1/agents/only', spec);
        const body = (await response.json()) as { agent?: { id: string }; result?: string };
        return { status: response.status, id: body.agent?.id, result: body.result, body };
      }),
    );
    const bad = answers.filter((a) => a.status !== 200 && a.status !== 201);
    assert.deepEqual(bad.slice(0, 3), [], `${bad.length} answers were neither 200 nor 201`);
    assert.equal(new Set(answers.map((a) => a.id)).size, 1, 'every answer names the same agent');
    assert.equal(answers.filter((a) => a.status === 201).length, 1, 'one of them created it');
    assert.equal(answers.filter((a) => a.result === 'created').length, 1);
    for (let i = 0; i < 3; i++) {
      const list = (await (await c.call(i, 'GET', '/v1/agents')).json()) as {
        data: { name: string; id: string }[];
      };
      assert.deepEqual(
        list.data.map((a) => [a.name, a.id]),
        [['only', answers[0]?.id]],
        `node ${i} lists one agent`,
      );
      const versions = (await (await c.call(i, 'GET', '/v1/agents/only/versions')).json()) as {
        data: unknown[];
      };
      assert.equal(versions.data.length, 1, 'the same spec applied again is no new version');
    }
  });

  it('an agent changed through node A is served in its new version by B and C within a second', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'greeter', model: MODEL, instructions: 'Say hello in English.' }, 0);
    // B and C each hold a live instance of version 1.
    for (const i of [1, 2]) {
      const run = (await (
        await c.call(i, 'POST', '/v1/agents/greeter/runs', { input: 'hi' })
      ).json()) as ApiRun;
      assert.equal(run.status, 'succeeded', JSON.stringify(run));
      assert.equal(run.agentVersion, 1);
      assert.match(systemPrompt(c.fake.requests.at(-1)?.messages ?? []), /English/);
    }
    const statsBefore = await Promise.all([1, 2].map(async (i) => poolStats(c.call.bind(c), i)));
    for (const s of statsBefore) assert.ok(s.active >= 1, `a live instance: ${JSON.stringify(s)}`);

    const changed = await c.putAgent(
      { name: 'greeter', model: MODEL, instructions: 'Say hello in French.' },
      0,
    );
    assert.equal(changed.version, 2);
    const changedAt = Date.now();
    for (const i of [1, 2]) {
      // The other nodes hear of the change over Redis (and PostgreSQL's NOTIFY): a request sent the
      // moment the PUT answered may still beat the message, so runs are tried for up to a second.
      let run: ApiRun;
      do {
        run = (await (await c.call(i, 'POST', '/v1/agents/greeter/runs', { input: 'hi' })).json()) as ApiRun;
        assert.equal(run.status, 'succeeded', JSON.stringify(run));
      } while (run.agentVersion !== 2 && Date.now() - changedAt < 1000);
      assert.equal(run.agentVersion, 2, `node ${i} ran version 2`);
      assert.match(
        systemPrompt(c.fake.requests.at(-1)?.messages ?? []),
        /French/,
        `node ${i} sent the new instructions`,
      );
    }
    const elapsed = Date.now() - changedAt;
    assert.ok(elapsed < 1000, `both runs used the new version within ${elapsed} ms`);
    console.log(`change through A served by B and C after ${elapsed} ms`);

    // The old instance is retired on B and C (the pool's counters say so).
    for (const [k, i] of [1, 2].entries()) {
      const after = await poolStats(c.call.bind(c), i);
      assert.ok(
        after.retirements > (statsBefore[k]?.retirements ?? 0),
        `node ${i} retired its version-1 instance: ${JSON.stringify(after)}`,
      );
    }
  });
});

/** The figures of `GET /v1/pool/stats` this test reads. */
async function poolStats(
  call: (i: number, method: string, path: string) => Promise<Response>,
  i: number,
): Promise<{ active: number; retirements: number }> {
  const body = (await (await call(i, 'GET', '/v1/pool/stats')).json()) as Record<string, unknown>;
  const counters = (body['counters'] ?? body) as Record<string, unknown>;
  return { active: Number(body['active']), retirements: Number(counters['retirements']) };
}
