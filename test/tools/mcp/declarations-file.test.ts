/**
 * MCP servers declared in an agents file (`mcpServers:`): `agentpool apply -f` (a child process)
 * writes them to the SQLite file next to the agents that use them, says created / unchanged /
 * updated per server, and a pool opened on that file calls the server; bad entries apply nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAgentPool } from '../../../src/agent-pool.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { tempDir } from '../../support/temp-dir.ts';
import { toolContext } from './rig.ts';

const MAIN = resolve(import.meta.dirname, '../../../src/cli/main.ts');

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('AGENTPOOL_')),
  );
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('mcpServers in an agents file', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const file = join(tmp.dir, 'agents.yaml');
  let server: TestMcpServer;
  before(async () => {
    server = await startMcpServer();
  });
  after(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('applies the servers before the agents, then a pool on the file uses them', async () => {
    const yaml = (timeout: number) =>
      [
        'mcpServers:',
        '  - name: calc',
        '    project: acme',
        '    transport: http',
        `    url: ${server.url}`,
        `    timeoutMs: ${timeout}`,
        '    headers:',
        '      Authorization: { env: MCP_CALC_TOKEN }',
        'agents:',
        '  - name: mathy',
        '    project: acme',
        '    tools: ["mcp:calc/add"]',
        '',
      ].join('\n');
    writeFileSync(file, yaml(5000));
    const first = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'created    acme/mcp:calc\ncreated    acme/mathy  v1\n');
    const again = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(again.stdout, 'unchanged  acme/mcp:calc\nunchanged  acme/mathy  v1\n');
    writeFileSync(file, yaml(6000));
    const changed = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(changed.stdout, 'updated    acme/mcp:calc\nunchanged  acme/mathy  v1\n');

    process.env['MCP_CALC_TOKEN'] = 'Bearer from-env';
    const pool = await createAgentPool({ dataDir, ttlSweepIntervalMs: 0 });
    try {
      const shown = await pool.mcp.get('acme', 'calc');
      assert.deepEqual(shown.declaration, {
        transport: 'http',
        url: server.url,
        timeoutMs: 6000,
        headers: { Authorization: { env: 'MCP_CALC_TOKEN' } },
      });
      const [add] = await pool.tools.resolve(['mcp:calc/add'], 'acme');
      assert.equal(add?.name, 'calc__add');
      assert.deepEqual(await pool.tools.run(add!, { a: 1, b: 2 }, toolContext('acme')), {
        ok: true,
        output: '3',
      });
      assert.deepEqual(server.authorizations, ['Bearer from-env']);
    } finally {
      delete process.env['MCP_CALC_TOKEN'];
      await pool.close();
    }
  });

  it('refuses a bad server entry naming it, and applies nothing', async () => {
    writeFileSync(
      file,
      [
        'mcpServers:',
        '  - name: broken',
        '    transport: http',
        '    url: ftp://nowhere',
        'agents:',
        '  - name: never',
        '',
      ].join('\n'),
    );
    const res = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /mcpServers\[0\]: mcpServer\.url must be an http: or https: URL/);
    assert.equal(res.stdout, '');
  });
});
