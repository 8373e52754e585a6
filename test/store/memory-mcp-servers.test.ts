/** Runs the MCP server store conformance suite against the memory adapter. */
import { MemoryMcpServerStore } from '../../src/store/memory-mcp-servers.ts';
import { mcpServerStoreConformance } from './mcp-server-store.conformance.ts';

mcpServerStoreConformance('memory', async () => {
  const store = new MemoryMcpServerStore();
  return { store, cleanup: () => store.close() };
});
