/**
 * MCP failure behaviour against real servers: a hanging server times out (TOOL_TIMEOUT), opens its
 * breaker and then fails its tools at once with MCP_UNAVAILABLE while another server's tools go on; a server
 * that is down does not fail the agent's activation; cancelling a call cancels the request on the
 * server; a stdio server runs as one shared child process that ends when the pool closes.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../../src/core/clock.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { mcpRig, toolContext, until } from './rig.ts';

const P = 'acme';
const STDIO_SERVER = fileURLToPath(new URL('../fixtures/mcp-stdio-server.ts', import.meta.url));

describe('MCP failures', () => {
  let server: TestMcpServer;
  let other: TestMcpServer;
  beforeEach(async () => {
    [server, other] = await Promise.all([startMcpServer(), startMcpServer()]);
  });
  afterEach(async () => {
    await Promise.all([server.close(), other.close()]);
  });

  it('times out a hanging server, opens its breaker, then fails fast; other servers are unaffected', async () => {
    const rig = mcpRig({
      callTimeoutMs: 200,
      connectTimeoutMs: 200,
      breakerThreshold: 2,
      backoffInitialMs: 60_000,
    });
    try {
      await rig.mcp.put(P, 'stuck', { transport: 'http', url: server.url });
      await rig.mcp.put(P, 'fine', { transport: 'http', url: other.url });
      const tools = (await rig.catalog.resolveLive(['mcp:stuck', 'mcp:fine'], P)).current;
      server.hang = true;
      for (let i = 0; i < 2; i++) {
        const result = await rig.call(tools, 'stuck__echo', { text: 'x' });
        assert.equal(!result.ok && result.error.code, 'TOOL_TIMEOUT', JSON.stringify(result));
        assert.match(!result.ok ? result.error.message : '', /did not answer the call in time \(200 ms\)/);
      }
      assert.equal(rig.mcp.stats().servers.find((s) => s.server === 'stuck')?.breaker, 'open');
      assert.ok(rig.events.some((e) => e.type === 'mcp.breaker_opened' && e.server === 'stuck'));
      const callsBefore = server.counts.call + server.counts.initialize;
      const fast = await rig.call(tools, 'stuck__echo', { text: 'x' });
      assert.equal(!fast.ok && fast.error.code, 'MCP_UNAVAILABLE');
      assert.match(!fast.ok ? fast.error.message : '', /breaker is open/);
      assert.equal(server.counts.call + server.counts.initialize, callsBefore, 'nothing was sent to it');
      assert.deepEqual(await rig.call(tools, 'fine__echo', { text: 'ok' }), { ok: true, output: 'echo: ok' });
      const stuck = rig.mcp.stats().servers.find((s) => s.server === 'stuck');
      assert.ok((stuck?.timeouts ?? 0) >= 1);
      assert.equal(rig.mcp.stats().servers.find((s) => s.server === 'fine')?.breaker, 'closed');
    } finally {
      await rig.close();
    }
  });

  it('lets a trial call through after the backoff and closes the breaker when the server is back', async () => {
    const clock = new ManualClock();
    const rig = mcpRig(
      {
        callTimeoutMs: 200,
        connectTimeoutMs: 200,
        breakerThreshold: 1,
        backoffInitialMs: 1000,
        backoffMaxMs: 1000,
      },
      clock,
    );
    try {
      await rig.mcp.put(P, 'flaky', { transport: 'http', url: server.url });
      const tools = (await rig.catalog.resolveLive(['mcp:flaky'], P)).current;
      server.hang = true;
      assert.equal((await rig.call(tools, 'flaky__echo', { text: 'x' })).ok, false);
      assert.equal(rig.mcp.stats().servers[0]?.breaker, 'open');
      await server.restart(); // answers again, and forgot the session
      server.hang = false;
      clock.advance(499);
      const early = await rig.call(tools, 'flaky__echo', { text: 'y' });
      assert.match(!early.ok ? early.error.message : '', /breaker is open/, 'at least half the backoff');
      clock.advance(501); // past the whole backoff, whatever the jitter
      assert.deepEqual(await rig.call(tools, 'flaky__echo', { text: 'y' }), { ok: true, output: 'echo: y' });
      assert.equal(rig.mcp.stats().servers[0]?.breaker, 'closed');
      assert.ok(rig.events.some((e) => e.type === 'mcp.breaker_closed'));
    } finally {
      await rig.close();
    }
  });

  it('activates an agent whose server is down without its tools, and they appear when it is up', async () => {
    const port = server.port;
    await server.close();
    const clock = new ManualClock();
    const rig = mcpRig({ breakerThreshold: 1, backoffInitialMs: 1000, backoffMaxMs: 1000 }, clock);
    try {
      await rig.mcp.put(P, 'later', { transport: 'http', url: `http://127.0.0.1:${port}/mcp` });
      const live = await rig.catalog.resolveLive(['mcp:later', 'mcp:later/echo', 'calculator'], P);
      assert.deepEqual(
        live.current.map((t) => t.name),
        ['later__echo', 'calculator'],
        'a named tool stays, as a placeholder',
      );
      const down = await rig.call(live.current, 'later__echo', { text: 'x' });
      assert.equal(!down.ok && down.error.code, 'MCP_UNAVAILABLE');
      assert.equal(rig.mcp.stats().servers[0]?.breaker, 'open');
      server = await startMcpServer({ port });
      assert.equal(live.current.length, 2, 'no listing while the breaker is open');
      assert.equal(server.counts.initialize, 0);
      clock.advance(1000); // the backoff is over: the next listing is the trial
      // An activation now joins that trial and has the tools at once.
      const again = await rig.catalog.resolveLive(['mcp:later'], P);
      assert.deepEqual(
        again.current.map((t) => t.name),
        ['later__echo', 'later__add', 'later__slow'],
      );
      await until(() => live.current.length === 4, 'the tools once the server is up');
      assert.deepEqual(
        live.current.map((t) => t.name),
        ['later__echo', 'later__add', 'later__slow', 'calculator'],
      );
    } finally {
      await rig.close();
    }
  });

  it('fails with MCP_UNAVAILABLE naming an environment variable that is not set', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'sec', {
        transport: 'http',
        url: server.url,
        headers: { Authorization: { env: 'MCP_TEST_UNSET_VARIABLE' } },
      });
      const tools = (await rig.catalog.resolveLive(['mcp:sec/echo'], P)).current;
      const result = await rig.call(tools, 'sec__echo', { text: 'x' });
      assert.equal(!result.ok && result.error.code, 'MCP_UNAVAILABLE');
      assert.match(
        !result.ok ? result.error.message : '',
        /MCP_TEST_UNSET_VARIABLE \(for Authorization\) is not set/,
      );
      assert.equal(server.counts.initialize, 0);
    } finally {
      await rig.close();
    }
  });

  it("bounds a call by its server's timeout alone, not by the tool timeout", async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url, timeoutMs: 300 });
      const tools = (await rig.catalog.resolveLive(['mcp:search'], P)).current;
      const tool = tools.find((t) => t.name === 'search__slow')!;
      const started = performance.now();
      // A 20 ms tool timeout that would win if runTool timed MCP calls too.
      const result = await rig.catalog.run(tool, {}, toolContext(P), 20);
      assert.ok(performance.now() - started >= 290, 'it waited for the server timeout');
      assert.equal(!result.ok && result.error.code, 'TOOL_TIMEOUT', JSON.stringify(result));
      assert.match(!result.ok ? result.error.message : '', /did not answer the call in time \(300 ms\)/);
      assert.equal(rig.mcp.stats().servers[0]?.timeouts, 1, 'counted as a timeout of the server');
    } finally {
      await rig.close();
    }
  });

  it('cancels the request on the server when the call is cancelled', async () => {
    const rig = mcpRig();
    try {
      await rig.mcp.put(P, 'search', { transport: 'http', url: server.url });
      const tools = (await rig.catalog.resolveLive(['mcp:search'], P)).current;
      const controller = new AbortController();
      const pending = rig.call(tools, 'search__slow', {}, P, controller.signal);
      await until(() => server.counts.call === 1, 'the call to reach the server');
      controller.abort();
      const result = await pending;
      assert.equal(!result.ok && result.error.code, 'RUN_CANCELLED');
      await until(() => server.counts.cancelled === 1, 'notifications/cancelled');
      assert.equal(rig.mcp.stats().servers[0]?.breaker, 'closed', 'a cancelled call is no failure');
    } finally {
      await rig.close();
    }
  });

  it('runs a stdio server as one shared child process, with its env secret, ended by close', async () => {
    process.env['MCP_STDIO_SECRET'] = 's3cret';
    const rig = mcpRig();
    let pid = 0;
    try {
      await rig.mcp.put(P, 'local', {
        transport: 'stdio',
        command: process.execPath,
        args: [STDIO_SERVER],
        env: { MCP_TEST_SECRET: { env: 'MCP_STDIO_SECRET' } },
      });
      const tools = (await rig.catalog.resolveLive(['mcp:local'], P)).current;
      assert.deepEqual(
        tools.map((t) => t.name),
        ['local__whoami'],
      );
      const first = await rig.call(tools, 'local__whoami', { note: 'one' });
      const second = await rig.call(tools, 'local__whoami', { note: 'two' });
      const match = /^one from (\d+) with s3cret$/.exec(first.ok ? String(first.output) : '');
      assert.ok(match, JSON.stringify(first));
      pid = Number(match[1]);
      assert.deepEqual(second, { ok: true, output: `two from ${pid} with s3cret` });
      assert.equal(rig.mcp.stats().servers[0]?.opens, 1);
    } finally {
      delete process.env['MCP_STDIO_SECRET'];
      await rig.close();
    }
    await until(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the stdio server to exit');
  });
});
