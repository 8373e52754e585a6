/**
 * The /v1/mcp-servers routes over fastify inject on a memory pool: declare (201, then 200),
 * read, list, delete; secrets referenced from the environment shown as references, secret-looking
 * literals masked; bad declarations refused with clear codes; stdio and environment references
 * restricted for project keys; each project sees its own servers; the pool stats' `mcp` section.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../../src/agent-pool.ts';
import { buildServer } from '../../../src/server/app.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

describe('/v1/mcp-servers', () => {
  let pool: AgentPool;
  let app: FastifyInstance;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;
  beforeEach(async () => {
    pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    app = await buildServer(pool, { adminKey: ADMIN });
    await pool.projects.create({ id: 'alpha' });
    await pool.projects.create({ id: 'beta' });
    alpha = { authorization: `Bearer ${(await pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await pool.projects.createKey('beta')).key}` };
  });
  afterEach(async () => {
    await app.close();
    await pool.close();
  });

  const put = (name: string, payload: unknown, headers = alpha, query = '') =>
    app.inject({
      method: 'PUT',
      url: `/v1/mcp-servers/${name}${query}`,
      payload: payload as object,
      headers,
    });

  it('declares, replaces, reads, lists and deletes a server, never showing a secret', async () => {
    const declaration = {
      transport: 'http',
      url: 'https://mcp.example.com/mcp',
      headers: {
        Authorization: { env: 'MCP_SEARCH_TOKEN' },
        'X-Api-Key': 'literal-secret',
        'X-Team': 'search',
      },
      timeoutMs: 5000,
    };
    const created = await put('search', declaration);
    assert.equal(created.statusCode, 201, created.body);
    const shown = {
      transport: 'http',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: { env: 'MCP_SEARCH_TOKEN' }, 'X-Api-Key': '********', 'X-Team': 'search' },
      timeoutMs: 5000,
    };
    assert.deepEqual(created.json().declaration, shown);
    assert.equal(created.json().project, 'alpha');
    assert.doesNotMatch(created.body, /literal-secret/);
    const got = await app.inject({ url: '/v1/mcp-servers/search', headers: alpha });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json().declaration, shown);
    assert.doesNotMatch(got.body, /literal-secret/);
    const replaced = await put('search', { transport: 'http', url: 'https://other.example.com/mcp' });
    assert.equal(replaced.statusCode, 200);
    assert.equal(replaced.json().createdAt, created.json().createdAt);
    await put('alpha-2', { transport: 'http', url: 'http://localhost:1/mcp' });
    const list = await app.inject({ url: '/v1/mcp-servers', headers: alpha });
    assert.deepEqual(
      list.json().data.map((s: { name: string }) => s.name),
      ['alpha-2', 'search'],
    );
    const deleted = await app.inject({ method: 'DELETE', url: '/v1/mcp-servers/search', headers: alpha });
    assert.equal(deleted.statusCode, 204);
    const gone = await app.inject({ url: '/v1/mcp-servers/search', headers: alpha });
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.json<ErrorBody>().error.code, 'MCP_SERVER_NOT_FOUND');
    const again = await app.inject({ method: 'DELETE', url: '/v1/mcp-servers/search', headers: alpha });
    assert.equal(again.json<ErrorBody>().error.code, 'MCP_SERVER_NOT_FOUND');
  });

  it('refuses bad declarations with VALIDATION_FAILED naming the field', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['bad_name', { transport: 'http', url: 'http://h/mcp' }, /^name must be 1 to 32 letters/],
      ['ok', { transport: 'ws', url: 'ws://h' }, /^body\.transport must be "http" or "stdio"/],
      ['ok', { transport: 'http', url: 'ftp://h' }, /^body\.url must be an http: or https: URL/],
      ['ok', { transport: 'http' }, /^body\.url must be an http: or https: URL/],
      ['ok', { transport: 'http', url: 'http://h', colour: 1 }, /^body\.colour is not a known field/],
      [
        'ok',
        { transport: 'http', url: 'http://h', headers: { A: 1 } },
        /^body\.headers\.A must be a string or \{ "env"/,
      ],
      [
        'ok',
        { transport: 'http', url: 'http://h', headers: { A: '********' } },
        /is the masked value GET shows/,
      ],
      [
        'ok',
        { transport: 'http', url: 'http://h', timeoutMs: 0 },
        /^body\.timeoutMs must be an integer from 1/,
      ],
      [
        'ok',
        { transport: 'http', url: 'http://h', headers: { A: { env: '1BAD' } } },
        /^body\.headers\.A\.env is not a valid/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const res = await put(name, body, admin, '?project=alpha');
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
      const { error } = res.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, message);
    }
  });

  it('lets only the admin declare stdio servers, and project keys reference only MCP_ variables', async () => {
    const stdio = {
      transport: 'stdio',
      command: 'node',
      args: ['server.js'],
      env: { TOKEN: { env: 'GITHUB_TOKEN' } },
    };
    const refused = await put('local', stdio);
    assert.equal(refused.statusCode, 403);
    assert.match(
      refused.json<ErrorBody>().error.message,
      /needs the admin key \(tools\.mcp\.allowStdio is "admin"\)/,
    );
    const secret = await put('remote', {
      transport: 'http',
      url: 'http://h/mcp',
      headers: { Authorization: { env: 'DATABASE_URL' } },
    });
    assert.equal(secret.statusCode, 403);
    assert.match(secret.json<ErrorBody>().error.message, /only environment variables starting with "MCP_"/);
    const allowed = await put('remote', {
      transport: 'http',
      url: 'http://h/mcp',
      headers: { Authorization: { env: 'MCP_REMOTE_TOKEN' } },
    });
    assert.equal(allowed.statusCode, 201);
    const byAdmin = await put('local', stdio, admin, '?project=alpha');
    assert.equal(byAdmin.statusCode, 201, byAdmin.body);
    assert.deepEqual(byAdmin.json().declaration.env, { TOKEN: { env: 'GITHUB_TOKEN' } });
  });

  it("keeps each project's servers its own; the admin names a project with ?project=", async () => {
    await put('search', { transport: 'http', url: 'http://alpha/mcp' });
    assert.equal((await app.inject({ url: '/v1/mcp-servers/search', headers: beta })).statusCode, 404);
    assert.deepEqual((await app.inject({ url: '/v1/mcp-servers', headers: beta })).json().data, []);
    const other = await app.inject({ url: '/v1/mcp-servers?project=alpha', headers: beta });
    assert.equal(other.statusCode, 403);
    const byAdmin = await app.inject({ url: '/v1/mcp-servers/search?project=alpha', headers: admin });
    assert.equal(byAdmin.json().declaration.url, 'http://alpha/mcp');
    const missing = await app.inject({ url: '/v1/mcp-servers?project=nope', headers: admin });
    assert.equal(missing.json<ErrorBody>().error.code, 'PROJECT_NOT_FOUND');
  });

  describe('with a live server', () => {
    let mcp: TestMcpServer;
    beforeEach(async () => {
      mcp = await startMcpServer();
    });
    afterEach(async () => mcp.close());

    it("reports each server's figures in /v1/pool/stats and /metrics", async () => {
      await put('search', { transport: 'http', url: mcp.url });
      const tools = await pool.tools.resolve(['mcp:search'], 'alpha');
      const echo = tools.find((t) => t.name === 'search__echo')!;
      const ctx = {
        signal: new AbortController().signal,
        project: 'alpha',
        agent: 'a',
        runId: 'r',
        threadId: null,
        idempotencyKey: 'k',
      };
      assert.equal((await pool.tools.run(echo, { text: 'hi' }, ctx)).ok, true);
      const stats = await app.inject({ url: '/v1/pool/stats', headers: admin });
      const server = stats.json().mcp.servers[0];
      assert.equal(server.project, 'alpha');
      assert.equal(server.server, 'search');
      assert.equal(server.calls, 1);
      assert.equal(server.opens, 1);
      assert.equal(server.breaker, 'closed');
      assert.equal(server.tools, 3);
      const own = await app.inject({ url: '/v1/pool/stats', headers: alpha });
      assert.equal(own.json().mcp.servers.length, 1);
      const others = await app.inject({ url: '/v1/pool/stats', headers: beta });
      assert.deepEqual(others.json().mcp.servers, []);
      const metrics = await app.inject({ url: '/metrics', headers: admin });
      assert.match(metrics.body, /agentpool_mcp_session_opens_total\{project="alpha",server="search"\} 1/);
      assert.match(
        metrics.body,
        /agentpool_mcp_call_seconds_count\{project="alpha",server="search",outcome="ok"\} 1/,
      );
    });
  });
});
