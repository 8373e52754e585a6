/**
 * Feature flags across three `agentpool serve` processes on one PostgreSQL and one Redis: a PUT or
 * DELETE through one node is in effect on every node within a second (polled with a one-second
 * deadline), a flag from the config file is seeded once and overridden for good by a runtime PUT,
 * and the history read through any node tells every change with its actor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClusterNode, clusterForSuite } from '../support/cluster.ts';

interface FlagBody {
  flag?: { strategy: string; percent?: number };
  error?: { code: string };
}

describe('feature flags across three nodes', () => {
  const suite = clusterForSuite({
    label: 'flags',
    config: 'flags:\n  from-config:\n    strategy: percentage\n    percent: 10\n',
  });

  /** Node i's view of flag `name` (the body of GET /v1/flags/{name}). */
  const read = async (i: number, name: string): Promise<FlagBody> =>
    (await (await suite.cluster.call(i, 'GET', `/v1/flags/${name}`)).json()) as FlagBody;

  /** Polls every node until `holds` is true of its view, for at most one second from now. */
  async function everyNodeWithinASecond(name: string, holds: (body: FlagBody) => boolean): Promise<void> {
    const deadline = Date.now() + 1000;
    const pending = new Set<ClusterNode>(suite.cluster.nodes);
    const last = new Map<string, FlagBody>();
    while (pending.size > 0 && Date.now() <= deadline) {
      await Promise.all(
        [...pending].map(async (node) => {
          const body = await read(suite.cluster.nodes.indexOf(node), name);
          last.set(node.id, body);
          if (holds(body)) pending.delete(node);
        }),
      );
    }
    assert.deepEqual(
      [...pending].map((n) => [n.id, last.get(n.id)]),
      [],
      'every node should see the change within a second',
    );
  }

  it('a change through one node is in effect on every node within a second', async () => {
    const c = suite.cluster;
    const put = await c.call(0, 'PUT', '/v1/flags/new-ui', { strategy: 'percentage', percent: 25 });
    assert.equal(put.status, 201);
    await everyNodeWithinASecond('new-ui', (b) => b.flag?.percent === 25);
    assert.equal((await c.call(1, 'PUT', '/v1/flags/new-ui', { strategy: 'none' })).status, 200);
    await everyNodeWithinASecond('new-ui', (b) => b.flag?.strategy === 'none');
    assert.equal((await c.call(2, 'DELETE', '/v1/flags/new-ui')).status, 200);
    await everyNodeWithinASecond('new-ui', (b) => b.error?.code === 'NOT_FOUND');
    const history = (await (await c.call(1, 'GET', '/v1/flags/new-ui/history')).json()) as {
      data: { action: string; actor: string }[];
    };
    assert.deepEqual(
      history.data.map((h) => [h.action, h.actor]),
      [
        ['delete', 'admin'],
        ['put', 'admin'],
        ['put', 'admin'],
      ],
    );
  });

  it('seeds a config flag once; a runtime PUT overrides it on every node and survives a restart', async () => {
    const c = suite.cluster;
    for (let i = 0; i < 3; i++) assert.equal((await read(i, 'from-config')).flag?.percent, 10);
    const seeded = (await (await c.call(0, 'GET', '/v1/flags/from-config/history')).json()) as {
      data: { actor: string }[];
    };
    assert.deepEqual(
      seeded.data.map((h) => h.actor),
      ['config'],
      'three nodes started with the file: one write',
    );
    await c.call(0, 'PUT', '/v1/flags/from-config', { strategy: 'percentage', percent: 60 });
    await everyNodeWithinASecond('from-config', (b) => b.flag?.percent === 60);
    await c.kill(2);
    await c.restart(2);
    assert.equal(
      (await read(2, 'from-config')).flag?.percent,
      60,
      'the restart with the old file changed nothing',
    );
  });
});
