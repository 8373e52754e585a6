/**
 * Runs the MCP server store conformance suite against the SQLite adapter on a real file, plus what
 * only a file shows: declarations outlive the connection that wrote them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqliteMcpServerStore } from '../../src/store/sqlite-mcp-servers.ts';
import { openSqliteStores } from '../../src/store/sqlite-stores.ts';
import { storeOnTempFile } from '../support/sqlite-store.ts';
import { tempDir } from '../support/temp-dir.ts';
import { mcpServerStoreConformance } from './mcp-server-store.conformance.ts';

mcpServerStoreConformance('SQLite', () => storeOnTempFile((path) => new SqliteMcpServerStore({ path })));

describe('SQLite MCP server store', () => {
  it('keeps declarations across connections to the file, next to the other stores', async () => {
    const dir = tempDir();
    try {
      const path = `${dir.dir}/agentpool.db`;
      const first = openSqliteStores(path, { mcpServers: true });
      await first.mcpServers!.putMcpServer('acme', 'search', { transport: 'http', url: 'http://h/mcp' }, 1);
      await Promise.all([
        first.agents.close(),
        first.runs.close(),
        first.projects.close(),
        first.mcpServers!.close(),
      ]);
      const again = new SqliteMcpServerStore({ path });
      try {
        assert.deepEqual((await again.getMcpServer('acme', 'search'))?.declaration, {
          transport: 'http',
          url: 'http://h/mcp',
        });
      } finally {
        await again.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});
