/**
 * YAML and JSON files that do not parse (config files, agents files): the error names the file,
 * the line and the column, and shows the offending line under the one before it, never a line
 * that may hold a secret.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readAgentsFile } from '../../src/cli/agents-file.ts';
import { loadServerConfig, readStructuredFile } from '../../src/cli/config.ts';
import { codeFrame } from '../../src/cli/syntax-error.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { tempDir } from '../support/temp-dir.ts';
import { runCli } from './in-process.ts';

describe('files that do not parse', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const write = (name: string, text: string) => {
    const path = join(tmp.dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('a YAML agents file names the line and column and shows the offending line', () => {
    const path = write('agents.yaml', 'agents:\n  - name: a\n    tools: [builtin:calculator\n  - name: b\n');
    assert.throws(
      () => readAgentsFile(path),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        assert.equal(
          err.message,
          [
            `agents file ${path} is not valid: YAML syntax error at line 4, column 3: Flow sequence in block collection must be sufficiently indented and end with a ]`,
            '    3 |     tools: [builtin:calculator',
            '  > 4 |   - name: b',
            '      |   ^',
          ].join('\n'),
        );
        assert.deepEqual(err.details, { path, line: 4, column: 3 });
        return true;
      },
    );
  });

  it('a JSON config file names the line and column; a line that may hold a secret is not shown', () => {
    const path = write('agentpool.json', '{\n  "port": 8080,\n  "adminKey": "s3cret-s3cret-s3cret",\n}\n');
    assert.throws(
      () => loadServerConfig({ config: path }, {}),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        assert.equal(
          err.message,
          [
            `config file (--config) ${path} is not valid: JSON syntax error at line 4, column 1: Expected double-quoted property name`,
            '    3 | (line not shown: it may hold a secret)',
            '  > 4 | }',
            '      | ^',
          ].join('\n'),
        );
        assert.ok(!err.message.includes('s3cret'));
        return true;
      },
    );
  });

  it('a JSON error without a position keeps the reason and leaves the file out of it', () => {
    const path = write('broken.json', '{"adminKey": "s3cret-s3cret-s3cret", "port": }');
    assert.throws(
      () => readStructuredFile(path, 'config file'),
      (err: unknown) =>
        isAgentPoolError(err, 'VALIDATION_FAILED') &&
        err.message === `config file ${path} is not valid: JSON syntax error: Unexpected token '}'`,
    );
  });

  it('a code frame at the end of the file points past the last line', () => {
    assert.deepEqual(codeFrame('agents: [\n', 2, 1), ['  1 | agents: [', '> 2 |', '    | ^']);
    assert.deepEqual(codeFrame('a: 1', 1, 4), ['> 1 | a: 1', '    |    ^']);
  });

  it('agentpool apply prints the offending line and exits 1', async () => {
    const path = write('apply.yaml', '- name: a\n  tools: [x\n- name: b\n');
    const { code, stdout, stderr } = await runCli(['apply', '-f', path, '--store', 'memory']);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(
      stderr,
      /\nerror: agents file .*apply\.yaml is not valid: YAML syntax error at line 3, column 1: /,
    );
    assert.match(stderr, /\n {4}2 \| {3}tools: \[x\n {2}> 3 \| - name: b\n {6}\| \^\n$/);
  });
});
