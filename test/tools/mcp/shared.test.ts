/**
 * Declarations are shared state: two pools on one PostgreSQL database (two nodes of a cluster)
 * see a server declared through either, each opens its own session to it, and a deleted project
 * takes its MCP servers with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../../src/agent-pool.ts';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { testDatabase } from '../../support/postgres.ts';
import { toolContext } from './rig.ts';

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

  it("forgets a deleted project's servers", async () => {
    await a.projects.create({ id: 'gone' });
    await a.mcp.put('gone', 'calc', { transport: 'http', url: server.url });
    await a.projects.delete('gone', { cascade: true });
    await a.projects.create({ id: 'gone' });
    await assert.rejects(a.mcp.get('gone', 'calc'), (e) => isAgentPoolError(e, 'MCP_SERVER_NOT_FOUND'));
  });
});
