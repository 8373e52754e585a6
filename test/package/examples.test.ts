/**
 * The examples a newcomer runs first: `examples/quickstart.ts` prints what the pool really did
 * (versions read back, not assumed) and keeps its data out of the server's `./data`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { childEnv } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';

const QUICKSTART = resolve(import.meta.dirname, '../../examples/quickstart.ts');

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Runs the quickstart with `cwd` as working directory and `args`. */
function quickstart(
  cwd: string,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [QUICKSTART, ...args], { cwd, env: childEnv({}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

describe('examples/quickstart.ts', () => {
  const tmp = tempDir('agentpool-examples-');
  after(() => tmp.cleanup());

  it('works in a temporary data directory it names and removes, never ./data', async () => {
    const { code, stdout, stderr } = await quickstart(tmp.dir);
    assert.equal(code, 0, stderr);
    const dataDir = /^data directory: (\S+) \(temporary\)$/m.exec(stdout)?.[1];
    assert.ok(dataDir !== undefined, stdout);
    assert.ok(!existsSync(dataDir), 'the temporary directory is removed');
    assert.match(stdout, new RegExp(`\\nremoved ${escape(dataDir)}\\n$`));
    assert.deepEqual(readdirSync(tmp.dir), [], 'nothing written in the working directory');
    assert.match(stdout, /\n {2}#\d+ text {8}\[demo\] 17\*23 = 391\n/);
    assert.match(stdout, /\n {2}output: "\[demo\] 17\*23 = 391" \(\d+ in \/ \d+ out tokens\)\n/);
    assert.match(stdout, /\n {2}\[pool\] billing v1 left the pool \(evicted\)\n/);
    assert.match(stdout, /\n {2}changed: true, support is now at version 2\n/);
    assert.match(stdout, /\n {2}the run used version 2: "\[demo\] 2\+2 = 4"\n/);
  });

  it('given a directory, keeps it, and a second run reports the versions the store really holds', async () => {
    const dir = join(tmp.dir, 'kept');
    const first = await quickstart(tmp.dir, [dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^data directory: ${escape(dir)}\\n`));
    assert.ok(existsSync(join(dir, 'agentpool.db')));

    const second = await quickstart(tmp.dir, [dir]);
    assert.equal(second.code, 0, second.stderr);
    // apply puts back the original instructions (a new version), the others are as they were
    assert.match(second.stdout, /\n {2}support: updated, active version 3\n/);
    assert.match(second.stdout, /\n {2}billing: unchanged, active version 1\n/);
    assert.match(second.stdout, /\n {2}changed: true, support is now at version 4\n/);
    assert.match(second.stdout, /\n {2}the run used version 4: /);
    assert.doesNotMatch(second.stdout, /\nremoved /);
  });
});
