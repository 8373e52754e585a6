/** `agentpool apply -f`, run as a child process: its output, the store it writes, its exit codes. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { tempDir } from '../support/temp-dir.ts';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

/** The environment without any AGENTPOOL_* variable of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('AGENTPOOL_')),
  );
  return { ...env, ...extra };
}

/** Runs the CLI to completion. */
function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('agentpool apply', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const dataDir = join(tmp.dir, 'data');
  const file = join(tmp.dir, 'agents.yaml');

  it('prints created, then unchanged, then updated per agent, and exits 0', async () => {
    writeFileSync(
      file,
      'agents:\n  - name: support\n    instructions: Help.\n  - name: ops\n    project: acme\n',
    );
    const first = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'created    default/support  v1\ncreated    acme/ops  v1\n');
    assert.equal(first.stderr, '');
    assert.ok(existsSync(join(dataDir, 'agentpool.db')));

    const again = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'unchanged  default/support  v1\nunchanged  acme/ops  v1\n');

    writeFileSync(
      file,
      'agents:\n  - name: support\n    instructions: Help more.\n  - name: ops\n    project: acme\n',
    );
    const changed = await cli(['apply', '-f', file, '--data-dir', dataDir]);
    assert.equal(changed.stdout, 'updated    default/support  v2\nunchanged  acme/ops  v1\n');

    // what a pool on that data directory sees
    const pool = await createAgentPool({ dataDir, ttlSweepIntervalMs: 0 });
    try {
      const support = await pool.agents.get('default', 'support');
      assert.equal(support.activeVersion, 2);
      assert.equal(support.spec.instructions, 'Help more.');
    } finally {
      await pool.close();
    }
  });

  it('takes the data directory from AGENTPOOL_DATA_DIR', async () => {
    const envDir = join(tmp.dir, 'from-env');
    const json = join(tmp.dir, 'agents.json');
    writeFileSync(json, JSON.stringify([{ name: 'solo' }]));
    const result = await cli(['apply', '-f', json], { AGENTPOOL_DATA_DIR: envDir });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'created    default/solo  v1\n');
    assert.ok(existsSync(join(envDir, 'agentpool.db')));
  });

  it('fails a bad file with "error:" naming the file and entry, exit 1, nothing applied', async () => {
    const bad = join(tmp.dir, 'bad.yaml');
    writeFileSync(bad, '- name: fine\n- name: Not Valid\n');
    const badDir = join(tmp.dir, 'bad-data');
    const result = await cli(['apply', '-f', bad, '--data-dir', badDir]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^error: agents file .*bad\.yaml: agents\[1\] \("Not Valid"\): name must be a slug/,
    );

    const pool = await createAgentPool({ dataDir: badDir, ttlSweepIntervalMs: 0 });
    try {
      assert.equal(await pool.agents.count('default'), 0);
    } finally {
      await pool.close();
    }
  });

  it('fails a missing file with exit 1', async () => {
    const result = await cli(['apply', '-f', join(tmp.dir, 'nope.yaml'), '--data-dir', dataDir]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: agents file .*nope\.yaml does not exist\n$/);
  });

  it('exits 2 on usage errors: no -f, an unknown option, a bad flag value', async () => {
    const noFile = await cli(['apply', '--data-dir', dataDir]);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /error: required option '-f, --file <file>' not specified/);

    const unknown = await cli(['apply', '-f', file, '--colour', 'blue']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /error: unknown option '--colour'/);

    const badStore = await cli(['apply', '-f', file, '--store', 'redis']);
    assert.equal(badStore.code, 2);
    assert.match(
      badStore.stderr,
      /^error: --store must be one of "sqlite", "memory", "postgres", got "redis"\n$/,
    );
  });

  it('exits 1 naming the variable when AGENTPOOL_STORE is bad', async () => {
    const result = await cli(['apply', '-f', file, '--data-dir', dataDir], { AGENTPOOL_STORE: 'disk' });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^error: AGENTPOOL_STORE must be one of "sqlite", "memory", "postgres", got "disk"\n$/,
    );
  });

  it('prints help for the command and exits 0', async () => {
    const result = await cli(['apply', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /Usage: agentpool apply \[options\]/);
    assert.match(result.stdout, /-f, --file <file>/);
  });
});
