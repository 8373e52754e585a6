/** Agents files: reading YAML and JSON, applying declaratively, and failing with the entry named. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import {
  type AppliedAgent,
  applyAgentsFile,
  DEFAULT_AGENTS_FILE,
  readAgentsFile,
} from '../../src/cli/agents-file.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { tempDir } from '../support/temp-dir.ts';

const YAML = `
agents:
  - name: support
    instructions: Help.
    tools: [builtin:calculator]
  - name: triage
    project: acme
    tier: hot
`;

describe('agents file', () => {
  const tmp = tempDir();
  let pool: AgentPool;
  let n = 0;
  const write = (name: string, text: string): string => {
    const path = join(tmp.dir, `${n++}-${name}`);
    writeFileSync(path, text);
    return path;
  };

  beforeEach(async () => {
    await pool?.close();
    pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
  });
  after(async () => {
    await pool.close();
    tmp.cleanup();
  });

  it('applies a YAML file, then reports unchanged and updated on re-apply', async () => {
    const path = write('agents.yaml', YAML);
    assert.deepEqual(await applyAgentsFile(pool, path), [
      { project: 'default', name: 'support', result: 'created', version: 1 },
      { project: 'acme', name: 'triage', result: 'created', version: 1 },
    ]);
    const support = await pool.agents.get('default', 'support');
    assert.equal(support.spec.instructions, 'Help.');
    assert.deepEqual(support.spec.tools, ['builtin:calculator']);
    assert.equal((await pool.agents.get('acme', 'triage')).spec.tier, 'hot');

    assert.deepEqual(
      (await applyAgentsFile(pool, path)).map((a) => a.result),
      ['unchanged', 'unchanged'],
    );

    writeFileSync(path, YAML.replace('Help.', 'Help more.'));
    assert.deepEqual(await applyAgentsFile(pool, path), [
      { project: 'default', name: 'support', result: 'updated', version: 2 },
      { project: 'acme', name: 'triage', result: 'unchanged', version: 1 },
    ]);
  });

  it('reads a JSON file holding a bare list', async () => {
    const path = write('agents.json', JSON.stringify([{ name: 'a', model: 'demo/x' }, { name: 'b' }]));
    const seen: AppliedAgent[] = [];
    const applied = await applyAgentsFile(pool, path, { onApplied: (a) => seen.push(a) });
    assert.deepEqual(
      applied.map((a) => `${a.result} ${a.project}/${a.name} v${a.version}`),
      ['created default/a v1', 'created default/b v1'],
    );
    assert.deepEqual(seen, applied);
    assert.equal((await pool.agents.get('default', 'a')).spec.model, 'demo/x');
  });

  it('names the file, the entry and the field of a bad entry, and applies nothing', async () => {
    const path = write(
      'bad.yaml',
      'agents:\n  - name: first\n  - name: second\n    temperature: 7\n  - name: third\n',
    );
    await assert.rejects(applyAgentsFile(pool, path), (err: unknown) => {
      assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
      assert.equal(
        err.message,
        `agents file ${path}: agents[1] ("second"): temperature must be a number from 0 to 2, got 7`,
      );
      assert.equal(err.details.index, 1);
      assert.equal(err.details.name, 'second');
      assert.equal(err.details.field, 'temperature');
      return true;
    });
    assert.equal(await pool.agents.count('default'), 0);
  });

  it('reports every bad entry in one error, one per line, and applies nothing', async () => {
    const path = write(
      'several.yaml',
      [
        'agents:',
        '  - name: first',
        '    temperature: 7',
        '  - name: fine',
        '  - just-a-string',
        '  - name: fine',
        '  - name: Not A Slug',
        '',
      ].join('\n'),
    );
    await assert.rejects(applyAgentsFile(pool, path), (err: unknown) => {
      assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
      assert.deepEqual(err.message.split('\n'), [
        `agents file ${path} has 4 bad entries:`,
        '  agents[0] ("first"): temperature must be a number from 0 to 2, got 7',
        '  agents[2]: must be an object',
        '  agents[3] ("fine"): repeats default/fine, already defined by agents[1]',
        '  agents[4] ("Not A Slug"): name must be a slug of 1-64 lowercase letters, digits and hyphens, starting and ending with a letter or digit, got "Not A Slug"',
      ]);
      assert.equal(err.details.count, 4);
      const errors = err.details.errors as { index: number; field?: string }[];
      assert.deepEqual(
        errors.map((e) => [e.index, e.field]),
        [
          [0, 'temperature'],
          [2, undefined],
          [3, undefined],
          [4, 'name'],
        ],
      );
      return true;
    });
    assert.equal(await pool.agents.count('default'), 0);
  });

  it('lists at most 100 bad entries and says how many more there are', () => {
    const path = write(
      'many.yaml',
      Array.from({ length: 150 }, (_, i) => `- name: a${i}\n  maxSteps: 0\n`).join(''),
    );
    assert.throws(
      () => readAgentsFile(path),
      (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'));
        const lines = err.message.split('\n');
        assert.equal(lines[0], `agents file ${path} has 150 bad entries:`);
        assert.equal(lines.length, 102);
        assert.equal(lines.at(-1), '  … and 50 more');
        assert.equal((err.details.errors as unknown[]).length, 100);
        return true;
      },
    );
  });

  it('rejects entries that are not objects, repeat a name or use an unknown tool kind', () => {
    const cases: [string, RegExp][] = [
      ['- name: a\n- just-a-string\n', /agents\[1\]: must be an object/],
      ['- name: a\n- name: a\n', /agents\[1\] \("a"\): repeats default\/a, already defined by agents\[0\]/],
      ['- name: a\n  project: Not A Slug\n', /agents\[0\] \("a"\): project must be a slug/],
      [
        '- name: a\n  tools: ["agent:x"]\n',
        /agents\[0\] \("a"\): tool reference "agent:x": tool kind "agent"/,
      ],
      ['- name: a\n  colour: blue\n', /agents\[0\] \("a"\): colour is not a known field/],
      ['agents: []\nversion: 2\n', /has an unknown key "version"/],
      ['name: a\n', /has an unknown key "name"/],
      ['42\n', /must hold a list of agents/],
      ['agents: [\n', /is not valid: /],
    ];
    for (const [text, message] of cases) {
      const path = write('case.yaml', text);
      assert.throws(
        () => readAgentsFile(path),
        (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && message.test(err.message),
        `${JSON.stringify(text)} should fail with ${String(message)}`,
      );
    }
    // the same name in two projects is two agents
    assert.equal(readAgentsFile(write('ok.yaml', '- name: a\n- name: a\n  project: acme\n')).length, 2);
  });

  it('stops at an entry the store refuses and says which agents were applied before it', async () => {
    const path = write('agents.yaml', '- name: one\n- name: two\n- name: three\n');
    const refusing = {
      agents: {
        validate: (spec: unknown) => pool.agents.validate(spec),
        apply: (project: string, spec: unknown) =>
          (spec as { name: string }).name === 'two'
            ? Promise.reject(new Error('disk full'))
            : pool.agents.apply(project, spec),
      },
    };
    await assert.rejects(applyAgentsFile(refusing, path), (err: unknown) => {
      assert.ok(isAgentPoolError(err, 'INTERNAL_ERROR'));
      assert.match(err.message, /agents\[1\] \("two"\): disk full \(applied before it: default\/one\)$/);
      assert.deepEqual(
        (err.details.applied as AppliedAgent[]).map((a) => a.name),
        ['one'],
      );
      return true;
    });
    assert.ok(await pool.agents.find('default', 'one'));
    assert.equal(await pool.agents.find('default', 'three'), undefined);
  });

  it('applies nothing when an entry refers to an unknown tool or model provider, naming the entry and field', async () => {
    const cases: [string, string, RegExp][] = [
      [
        '- name: one\n- name: two\n  tools: [builtin:calculator, builtin:nosuch]\n',
        'tools[1]',
        /agents\[1\] \("two"\): tools\[1\] names no builtin tool "nosuch" \(builtin tools: .*calculator.*\(nothing was applied\)$/,
      ],
      [
        '- name: one\n- name: two\n  model: foo/bar\n',
        'model',
        /agents\[1\] \("two"\): model names an unknown model provider "foo" in "foo\/bar" \(known providers: demo, .*\(nothing was applied\)$/,
      ],
    ];
    for (const [text, field, message] of cases) {
      await assert.rejects(applyAgentsFile(pool, write('bad-ref.yaml', text)), (err: unknown) => {
        assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
        assert.equal(err.details.field, field);
        assert.equal(err.details.index, 1);
        assert.match(err.message, message);
        return true;
      });
      assert.equal(
        await pool.agents.find('default', 'one'),
        undefined,
        'the valid entry before it is not applied',
      );
    }
  });

  it('applies the bundled examples: support, researcher and a hot triage agent', async () => {
    const applied = await applyAgentsFile(pool, DEFAULT_AGENTS_FILE);
    assert.deepEqual(
      applied.map((a) => a.name),
      ['support', 'researcher', 'triage'],
    );
    const support = await pool.agents.get('default', 'support');
    assert.deepEqual(support.spec.tools, ['builtin:calculator', 'builtin:current_time']);
    assert.equal((await pool.agents.get('default', 'triage')).spec.tier, 'hot');
    const run = await (await pool.runs.start('default', 'support', { input: 'what is 17*23' })).result;
    assert.equal(run.status, 'succeeded');
    assert.match(run.output ?? '', /391/);
  });
});
