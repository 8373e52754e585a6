/**
 * MCP sessions and tool lists against a real MCP server (the SDK's, over Streamable HTTP on
 * localhost): one session and one listing shared by every resolution and call, idle sessions
 * closed, a session the server forgot re-initialised once, list_changed and a restart refreshing
 * the list, and two projects with different credentials kept apart.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../../src/core/clock.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { mcpRig, until } from './rig.ts';

const P = 'acme';

describe('MCP sessions over Streamable HTTP', () => {
  let server: TestMcpServer;
  beforeEach(async () => {
    server = await startMcpServer();
  });
  afterEach(async () => server.close());

  it('opens one session and lists once for every agent, run and call of an identity', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const first = (await rig.catalog.resolveLive(['mcp:search'], P)).current;
      const second = (await rig.catalog.resolveLive(['mcp:search/echo', 'calculator'], P)).current;
      assert.deepEqual(
        first.map((t) => t.name),
        ['search__echo', 'search__add', 'search__slow'],
      );
      assert.deepEqual(
        second.map((t) => t.name),
        ['search__echo', 'calculator'],
      );
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          rig.call(i % 2 ? first : second, 'search__echo', { text: `n${i}` }),
        ),
      );
      assert.deepEqual(results[3], { ok: true, output: 'echo: n3' });
      assert.deepEqual(await rig.call(first, 'search__add', { a: 2, b: 40 }), { ok: true, output: '42' });
      assert.equal(server.counts.initialize, 1, 'one session');
      assert.equal(server.counts.list, 1, 'one tools/list: calls never list');
      assert.equal(server.counts.call, 21);
      const [stats] = rig.mcp.stats().servers;
      assert.equal(stats?.opens, 1);
      assert.equal(stats?.calls, 21);
      assert.equal(stats?.listRefreshes, 1);
      assert.equal(stats?.breaker, 'closed');
      assert.match(
        await rig.registry.metrics(),
        /agentpool_mcp_calls_total\{project="acme",server="search"\} 21/,
      );
    } finally {
      await rig.close();
    }
  });

  it('checks input against the listed schema before calling, and shows a tool error to the model', async () => {
    await server.close();
    server = await startMcpServer({ toolsFor: () => ['add', 'fail'] });
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'calc', { transport: 'http', url: server.url });
      const tools = (await rig.catalog.resolveLive(['mcp:calc'], P)).current;
      const bad = await rig.call(tools, 'calc__add', { a: 'two' });
      assert.equal(bad.ok, false);
      assert.equal(!bad.ok && bad.error.code, 'TOOL_INPUT_INVALID');
      const failed = await rig.call(tools, 'calc__fail', {});
      assert.deepEqual(failed, {
        ok: false,
        error: { code: 'TOOL_FAILED', message: 'MCP tool "fail" of "calc" failed: it broke' },
      });
      assert.equal(server.counts.call, 1, 'the bad input never reached the server');
      assert.equal(rig.mcp.stats().servers[0]?.breaker, 'closed', 'a tool error is not a dead server');
    } finally {
      await rig.close();
    }
  });

  it('closes a session idle past the timeout, and opens a new one on the next call', async () => {
    const clock = new ManualClock();
    const rig = mcpRig({ idleTimeoutMs: 60_000 }, clock);
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const tools = (await rig.catalog.resolveLive(['mcp:search'], P)).current;
      assert.equal((await rig.call(tools, 'search__echo', { text: 'a' })).ok, true);
      clock.advance(59_000);
      assert.equal(rig.mcp.stats().openSessions, 1, 'not idle long enough yet');
      clock.advance(31_000); // the sweep runs every 30 s
      assert.equal(rig.mcp.stats().openSessions, 0);
      assert.ok(rig.events.some((e) => e.type === 'mcp.session_closed' && e.reason === 'idle'));
      assert.deepEqual(await rig.call(tools, 'search__echo', { text: 'b' }), { ok: true, output: 'echo: b' });
      assert.equal(server.counts.initialize, 2);
    } finally {
      await rig.close();
    }
  });

  it('re-initialises a session the server forgot (404), once, without the caller noticing', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const tools = (await rig.catalog.resolveLive(['mcp:search'], P)).current;
      await rig.call(tools, 'search__echo', { text: 'before' });
      await server.forgetSessions();
      assert.deepEqual(await rig.call(tools, 'search__echo', { text: 'after' }), {
        ok: true,
        output: 'echo: after',
      });
      assert.ok(server.counts.expired >= 1, 'the old session id was refused with 404');
      assert.equal(server.counts.initialize, 2);
      assert.equal(rig.mcp.stats().servers[0]?.reinits, 1);
      assert.ok(rig.events.some((e) => e.type === 'mcp.session_opened' && e.reopened));
    } finally {
      await rig.close();
    }
  });

  it('refreshes the cached list on notifications/tools/list_changed, and the live tools follow', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const live = await rig.catalog.resolveLive(['mcp:search', 'calculator'], P);
      const before = live.current;
      assert.equal(before, live.current, 'the same array while nothing changed');
      server.addTool('lookup');
      await until(() => live.current.some((t) => t.name === 'search__lookup'), 'the new tool');
      assert.deepEqual(
        live.current.map((t) => t.name),
        ['search__echo', 'search__add', 'search__slow', 'search__lookup', 'calculator'],
      );
      assert.equal(server.counts.list, 2);
      assert.ok(rig.events.some((e) => e.type === 'mcp.tools_changed' && e.tools === 4));
      assert.deepEqual(await rig.call(live.current, 'search__lookup', { text: 'x' }), {
        ok: true,
        output: 'lookup: x',
      });
    } finally {
      await rig.close();
    }
  });

  it('refreshes after the TTL in the background: calls keep the cached list meanwhile', async () => {
    const clock = new ManualClock();
    const rig = mcpRig({ listTtlMs: 1000 }, clock);
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const live = await rig.catalog.resolveLive(['mcp:search'], P);
      assert.equal(live.current.length, 3);
      assert.equal(server.counts.list, 1);
      clock.advance(1000);
      assert.equal(live.current.length, 3, 'answered from the cache at once');
      await until(() => server.counts.list === 2, 'the background refresh');
    } finally {
      await rig.close();
    }
  });

  it('reconnects to a restarted server and lists its tools again', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const live = await rig.catalog.resolveLive(['mcp:search'], P);
      await rig.call(live.current, 'search__echo', { text: 'one' });
      server.addTool('extra'); // the restarted server serves it from the start
      await until(() => server.counts.list === 2, 'the list_changed refresh');
      await server.restart();
      assert.deepEqual(await rig.call(live.current, 'search__echo', { text: 'two' }), {
        ok: true,
        output: 'echo: two',
      });
      await until(() => server.counts.list === 3, 'the refresh after reconnecting');
      assert.equal(server.counts.initialize, 2);
      assert.ok(live.current.some((t) => t.name === 'search__extra'));
    } finally {
      await rig.close();
    }
  });

  it('keeps two projects with different credentials apart: sessions, headers and tool lists', async () => {
    await server.close();
    server = await startMcpServer({
      toolsFor: (auth) => (auth === 'Bearer alpha-token' ? ['alpha_tool'] : ['beta_tool']),
    });
    process.env['MCP_ALPHA_TOKEN'] = 'Bearer alpha-token';
    process.env['MCP_BETA_TOKEN'] = 'Bearer beta-token';
    const rig = mcpRig();
    try {
      for (const [project, env] of [
        ['alpha', 'MCP_ALPHA_TOKEN'],
        ['beta', 'MCP_BETA_TOKEN'],
      ] as const) {
        await rig.mcp.put(project, 'crm', {
          transport: 'http',
          url: server.url,
          headers: { Authorization: { env } },
        });
      }
      const alpha = (await rig.catalog.resolveLive(['mcp:crm'], 'alpha')).current;
      const beta = (await rig.catalog.resolveLive(['mcp:crm'], 'beta')).current;
      assert.deepEqual(
        alpha.map((t) => t.name),
        ['crm__alpha_tool'],
      );
      assert.deepEqual(
        beta.map((t) => t.name),
        ['crm__beta_tool'],
      );
      assert.deepEqual(server.authorizations, ['Bearer alpha-token', 'Bearer beta-token']);
      assert.equal(server.counts.initialize, 2);
      assert.deepEqual((await rig.mcp.get('alpha', 'crm')).declaration, {
        transport: 'http',
        url: server.url,
        headers: { Authorization: { env: 'MCP_ALPHA_TOKEN' } },
      });
    } finally {
      delete process.env['MCP_ALPHA_TOKEN'];
      delete process.env['MCP_BETA_TOKEN'];
      await rig.close();
    }
  });

  it('takes a put or delete of the declaration at the next call of tools resolved before it', async () => {
    const moved = await startMcpServer();
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const live = await rig.catalog.resolveLive(['mcp:search'], P);
      assert.deepEqual(await rig.call(live.current, 'search__echo', { text: 'a' }), {
        ok: true,
        output: 'echo: a',
      });
      await rig.mcp.put(P, 'search', { transport: 'http', url: moved.url });
      await until(
        () => moved.counts.list === 1 && live.current.length > 0,
        'the listing with the new declaration, started by the put',
      );
      assert.deepEqual(await rig.call(live.current, 'search__echo', { text: 'b' }), {
        ok: true,
        output: 'echo: b',
      });
      assert.equal(moved.counts.call, 1, 'the call went to the new URL');
      assert.equal(server.counts.call, 1);
      await rig.mcp.delete(P, 'search');
      assert.deepEqual(live.current, [], "a deleted server's tools leave the live tools");
    } finally {
      await rig.close();
      await moved.close();
    }
  });

  it('fails the activation of a reference to an undeclared server, naming it', async () => {
    const rig = mcpRig();
    try {
      await assert.rejects(rig.catalog.resolveLive(['mcp:nowhere'], P), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MCP_SERVER_NOT_FOUND');
        assert.match(
          err.message,
          /"mcp:nowhere".*no MCP server named "nowhere" is declared in project "acme"/,
        );
        return true;
      });
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      await assert.rejects(rig.catalog.resolveLive(['mcp:search/nope'], P), /has no tool "nope"/);
    } finally {
      await rig.close();
    }
  });
});
