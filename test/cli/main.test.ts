/**
 * The `agentpool` program as a whole: `--version`, `--help`, and flag values that are usage
 * errors (exit 2, naming the flag) before any request is made.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../support/cli-process.ts';
import { runCli } from './in-process.ts';

const VERSION = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
).version;

describe('agentpool', () => {
  it('--version and -V print the version of its package.json', async () => {
    const spawned = await cli(['--version'], {});
    assert.deepEqual(spawned, { code: 0, stdout: `${VERSION}\n`, stderr: '' });
    assert.deepEqual(await runCli(['-V']), { code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('--help lists every command and the exit codes', async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    for (const command of [
      'serve',
      'apply',
      'agents',
      'run',
      'threads',
      'runs',
      'stats',
      'projects',
      'keys',
      'usage',
      'flags',
    ]) {
      assert.match(stdout, new RegExp(`\\n {2}${command} `), command);
    }
    assert.match(stdout, /Exit codes: 0 success, 1 an error .*, 2 a usage error\./);
  });

  it('--url that is not an http(s) URL is a usage error (exit 2) on every client command', async () => {
    for (const args of [
      ['agents', 'ls'],
      ['run', 'support', 'hi'],
      ['threads', 'create'],
      ['runs', 'follow', 'run_1'],
      ['projects', 'ls'],
      ['keys', 'ls', 'acme'],
      ['usage'],
      ['flags', 'ls'],
      ['stats'],
    ]) {
      for (const url of ['notaurl', 'ftp://example.com']) {
        const { code, stdout, stderr } = await runCli([...args, '--url', url]);
        assert.equal(code, 2, `${args.join(' ')} --url ${url}`);
        assert.equal(stdout, '');
        assert.ok(stderr.includes(`--url must be an http(s) URL, got "${url}"`), stderr);
      }
    }
  });

  it('bad values of --project, --metadata, --limits, --quota, --after and --ttl-seconds are usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['agents', 'ls', '--project', 'Not A Slug'], /--project must be a slug/],
      [['threads', 'create', '--metadata', '[1]'], /--metadata must be a JSON object, got "\[1\]"/],
      [['threads', 'create', '--ttl-seconds', '0'], /--ttl-seconds must be an integer from 1/],
      [['projects', 'create', 'acme', '--limits', '{oops'], /--limits must be a JSON object/],
      [
        ['projects', 'limits', 'acme', '--quota', 'maxAgents=many'],
        /--quota maxAgents must be a number or "default"/,
      ],
      [['projects', 'limits', 'acme', '--budget', 'dailyUsd'], /--budget must be field=value/],
      [['runs', 'follow', 'run_1', '--after', '-1'], /--after must be an integer of 0 or more/],
      [['projects', 'rm'], /missing required argument 'id'/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runCli(args, { AGENTPOOL_URL: 'http://127.0.0.1:9' });
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, message);
    }
  });
});
