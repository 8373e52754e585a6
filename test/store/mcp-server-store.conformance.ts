/**
 * The conformance suite of the McpServerStore port: a put creates then replaces (keeping
 * createdAt), reads back exactly what was put (environment references as references), lists a
 * project's servers by name, keeps projects apart, and deletes one server or a whole project's.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { McpServerStore } from '../../src/store/mcp-server-ports.ts';
import type { McpServerDeclaration } from '../../src/store/mcp-server-ports.ts';

const T0 = Date.UTC(2026, 0, 1);
const HTTP: McpServerDeclaration = {
  transport: 'http',
  url: 'https://mcp.example.com/mcp',
  headers: { Authorization: { env: 'MCP_TOKEN' }, 'X-Team': 'search' },
  timeoutMs: 5000,
};
const STDIO: McpServerDeclaration = {
  transport: 'stdio',
  command: 'node',
  args: ['server.js', '--flag'],
  env: { API_KEY: { env: 'MCP_KEY' } },
  cwd: '/srv',
};

/** Registers the specification against the adapter that `factory` builds. */
export function mcpServerStoreConformance(
  name: string,
  factory: () => Promise<{ store: McpServerStore; cleanup(): Promise<void> }>,
): void {
  describe(`${name}: MCP server store`, () => {
    let store: McpServerStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => cleanup());

    it('has no server a project never declared', async () => {
      assert.equal(await store.getMcpServer('acme', 'search'), undefined);
      assert.deepEqual(await store.listMcpServers('acme'), []);
    });

    it('reads back exactly what was put, references as references', async () => {
      const put = await store.putMcpServer('acme', 'search', HTTP, T0);
      assert.equal(put.created, true);
      const expected = { project: 'acme', name: 'search', declaration: HTTP, createdAt: T0, updatedAt: T0 };
      assert.deepEqual(put.record, expected);
      assert.deepEqual(await store.getMcpServer('acme', 'search'), expected);
    });

    it('replaces a declaration whole on a second put, keeping createdAt', async () => {
      await store.putMcpServer('acme', 'search', HTTP, T0);
      const put = await store.putMcpServer('acme', 'search', STDIO, T0 + 1000);
      assert.equal(put.created, false);
      assert.deepEqual(await store.getMcpServer('acme', 'search'), {
        project: 'acme',
        name: 'search',
        declaration: STDIO,
        createdAt: T0,
        updatedAt: T0 + 1000,
      });
    });

    it("lists a project's servers by name and keeps projects apart", async () => {
      await store.putMcpServer('acme', 'zeta', HTTP, T0);
      await store.putMcpServer('acme', 'alpha', STDIO, T0);
      await store.putMcpServer('other', 'alpha', HTTP, T0);
      assert.deepEqual(
        (await store.listMcpServers('acme')).map((r) => r.name),
        ['alpha', 'zeta'],
      );
      assert.deepEqual((await store.getMcpServer('other', 'alpha'))?.declaration, HTTP);
      assert.deepEqual((await store.getMcpServer('acme', 'alpha'))?.declaration, STDIO);
    });

    it("deletes one server, then a project's every server", async () => {
      await store.putMcpServer('acme', 'a', HTTP, T0);
      await store.putMcpServer('acme', 'b', HTTP, T0);
      await store.putMcpServer('other', 'a', HTTP, T0);
      assert.equal(await store.deleteMcpServer('acme', 'a'), true);
      assert.equal(await store.deleteMcpServer('acme', 'a'), false);
      assert.equal(await store.getMcpServer('acme', 'a'), undefined);
      assert.equal(await store.deleteProjectMcpServers('acme'), 1);
      assert.deepEqual(await store.listMcpServers('acme'), []);
      assert.equal((await store.listMcpServers('other')).length, 1);
    });
  });
}
