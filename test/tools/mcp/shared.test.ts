/**
 * Declarations are shared state: two pools on one PostgreSQL database (two nodes of a cluster)
 * see a server declared through either, each opens its own session to it, a changed declaration
 * reaches the live tools of the other node over Redis, and a deleted project takes its MCP servers
 * with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../../src/agent-pool.ts';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { testDatabase } from '../../support/postgres.ts';
import { redisPrefix } from '../../support/redis.ts';
import { toolContext, until } from './rig.ts';

describe('MCP declarations shared through PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof testDatabase>>;
  let server: TestMcpServer;
  let a: AgentPool;
  let b: AgentPool;
  before(async () => {
    [db, server] = await Promise.all([testDatabase('mcp'), startMcpServer()]);
    a = await createAgentPool({ store: 'postgres', databaseUrl: db.url, ttlSweepIntervalMs: 0 });
    b = await createAgentPool({ store: 'postgres', databaseUrl: db.url, ttlSweepIntervalMs: 0 });
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await Promise.all([db.cleanup(), server.close()]);
  });

  it('lets one node use a server another node declared', async () => {
    await a.projects.create({ id: 'acme' });
    await a.mcp.put('acme', 'calc', { transport: 'http', url: server.url });
    assert.deepEqual(
      (await b.mcp.list('acme')).map((s) => s.name),
      ['calc'],
    );
    const [add] = await b.tools.resolve(['mcp:calc/add'], 'acme');
    assert.deepEqual(await b.tools.run(add!, { a: 20, b: 22 }, toolContext('acme')), {
      ok: true,
      output: '42',
    });
    assert.equal(b.mcp.stats().servers[0]?.opens, 1);
    assert.deepEqual(a.mcp.stats().servers, [], 'no session where nothing used it');
  });

  it("brings a changed declaration to the other node's live tools, told over Redis", async () => {
    const redis = await redisPrefix('mcp');
    const moved = await startMcpServer();
    const open = (nodeId: string) =>
      createAgentPool({
        store: 'postgres',
        databaseUrl: db.url,
        redisUrl: redis.url,
        redisPrefix: redis.prefix,
        cluster: { nodeId },
        ttlSweepIntervalMs: 0,
      });
    const [c, d] = [await open('node-c'), await open('node-d')];
    try {
      await c.projects.create({ id: 'moving' });
      await c.mcp.put('moving', 'calc', { transport: 'http', url: server.url });
      const live = await d.tools.resolveLive(['mcp:calc'], 'moving');
      const add = () =>
        d.tools.run(
          live.current.find((t) => t.name === 'calc__add')!,
          { a: 1, b: 2 },
          toolContext('moving'),
        );
      assert.deepEqual(await add(), { ok: true, output: '3' });
      await c.mcp.put('moving', 'calc', { transport: 'http', url: moved.url });
      await until(
        () => moved.counts.list === 1 && live.current.length > 0,
        "node d's listing with the new declaration",
      );
      assert.deepEqual(await add(), { ok: true, output: '3' });
      assert.equal(moved.counts.call, 1, "node d's call went to the new URL");
    } finally {
      await Promise.all([c.close(), d.close()]);
      await Promise.all([moved.close(), redis.cleanup()]);
    }
  });

  it("forgets a deleted project's servers", async () => {
    await a.projects.create({ id: 'gone' });
    await a.mcp.put('gone', 'calc', { transport: 'http', url: server.url });
    await a.projects.delete('gone', { cascade: true });
    await a.projects.create({ id: 'gone' });
    await assert.rejects(a.mcp.get('gone', 'calc'), (e) => isAgentPoolError(e, 'MCP_SERVER_NOT_FOUND'));
  });
});
