/**
 * docs/configuration.md against the code: its tables list every setting of the settings table,
 * with its variable, flag and the default the owning module applies; every option a family
 * resolves is a setting (so a new option without docs fails here); the example config file loads;
 * and `serve --help` lists every variable.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { FAMILIES, FAMILY_KEYS } from '../../src/cli/config-families.ts';
import { resolveServerConfig } from '../../src/cli/config.ts';
import { effectiveValues } from '../../src/cli/effective-config.ts';
import { formatPath, SETTINGS, SETTINGS_WITH_ENV, settingAt } from '../../src/cli/settings.ts';
import { isPlainObject } from '../../src/core/options.ts';
import { cli } from '../support/cli-process.ts';

const DOC_PATH = resolve(import.meta.dirname, '../../docs/configuration.md');
const DOC = readFileSync(DOC_PATH, 'utf8');
const HEADER = '| key | variable | flag | default | meaning |';

interface DocRow {
  key: string;
  variable: string;
  flag: string;
  default: string;
  meaning: string;
}

/** The rows of every table of the doc whose header is {@link HEADER}. */
function documentedRows(): DocRow[] {
  const rows: DocRow[] = [];
  let inTable = false;
  for (const line of DOC.split('\n')) {
    if (line.replace(/\s+/g, ' ').trim() === HEADER) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    if (line.startsWith('| ---')) continue;
    const cells = line
      .slice(1, -1)
      .split(' | ')
      .map((cell) => cell.trim());
    assert.equal(cells.length, 5, `five cells in: ${line}`);
    const [key, variable, flag, def, meaning] = cells.map((cell) => cell.replace(/^`|`$/g, '')) as [
      string,
      string,
      string,
      string,
      string,
    ];
    rows.push({ key, variable, flag, default: def, meaning });
  }
  return rows;
}

function getAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, key) => (isPlainObject(v) ? v[key] : undefined), value);
}

/** The leaf paths of a resolved options object (an empty object counts as a leaf). */
function leaves(value: unknown, path: string[]): string[][] {
  if (!isPlainObject(value) || Object.keys(value).length === 0) return [path];
  return Object.entries(value).flatMap(([key, child]) => leaves(child, [...path, key]));
}

describe('docs/configuration.md', () => {
  const rows = documentedRows();
  const defaults = effectiveValues(resolveServerConfig({}), {});

  it('lists every setting of the code, in its order, and nothing else', () => {
    assert.deepEqual(
      rows.map((row) => row.key),
      SETTINGS.map((setting) => formatPath(setting.path)),
    );
  });

  it('gives each setting its variable, flag, the default its owner applies, and a meaning', () => {
    for (const [i, setting] of SETTINGS.entries()) {
      const row = rows[i] as DocRow;
      assert.equal(row.variable, setting.env ?? '—', `${row.key}: variable`);
      assert.equal(row.flag, setting.flag ?? '—', `${row.key}: flag`);
      const value = getAt(defaults, setting.path);
      const expected = setting.defaultText ?? JSON.stringify(value);
      assert.ok(expected !== undefined, `${row.key} has no default value: give it a defaultText`);
      assert.equal(row.default, expected, `${row.key}: default`);
      assert.ok(row.meaning.length > 0, `${row.key}: meaning`);
    }
  });

  it('leaves no option a family resolves without a setting (a new option must be documented)', () => {
    for (const key of FAMILY_KEYS) {
      for (const path of leaves(FAMILIES[key].resolve(undefined, {}), [key])) {
        assert.notEqual(
          settingAt(path).kind,
          'unknown',
          `${formatPath(path)} is resolved but has no setting`,
        );
      }
    }
  });

  it('holds an example config file that loads, with two named providers', () => {
    const example = /## An example\n\n```yaml\n([\s\S]*?)```/.exec(DOC)?.[1];
    assert.ok(example !== undefined, 'the example block');
    const config = resolveServerConfig({ file: { path: DOC_PATH, values: parseYaml(example) }, env: {} });
    assert.equal(config.pool?.maxActive, 500);
    assert.deepEqual(Object.keys(config.models?.providers ?? {}), ['openai', 'vllm', 'ollama']);
    assert.deepEqual(config.tools?.baseDir, resolve(DOC_PATH, '..', 'tools'));
  });

  it('is what `serve --help` lists: every variable', async () => {
    const help = await cli(['serve', '--help'], {});
    assert.equal(help.code, 0, help.stderr);
    for (const setting of SETTINGS_WITH_ENV) {
      assert.match(
        help.stdout,
        new RegExp(`^  ${setting.env} +${formatPath(setting.path).replace(/[.[\]]/g, '\\$&')}$`, 'm'),
      );
    }
  });
});
