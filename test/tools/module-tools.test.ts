import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { ModuleToolLoader, resolveModuleToolLoaderOptions } from '../../src/tools/module-tools.ts';
import type { Tool } from '../../src/tools/tool.ts';
import { tempDir } from '../support/temp-dir.ts';
import { evaluations, trackImports } from './fixtures/counter.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const code = (c: string, text?: RegExp) => (err: unknown) =>
  isAgentPoolError(err) && err.code === c && (text === undefined || text.test(err.message));

describe('module tool loader', () => {
  const temp = tempDir();
  after(temp.cleanup);

  it('defaults to the working directory, 1000 modules, and paths inside the base directory', () => {
    const o = resolveModuleToolLoaderOptions();
    assert.deepEqual([o.baseDir, o.maxModules, o.allowOutsideBaseDir], [process.cwd(), 1000, false]);
    assert.throws(
      () => resolveModuleToolLoaderOptions({ maxModules: 0 }),
      /tools\.maxModules must be a positive integer/,
    );
  });

  it('imports a module once and serves its tools from the cache after that', async () => {
    const imports = trackImports('/counted.ts');
    try {
      const loader = new ModuleToolLoader({ baseDir: fixtures });
      const [a, b] = await Promise.all([loader.load('counted.ts'), loader.load('./counted.ts')]);
      const c = await loader.load(join(fixtures, 'counted.ts'));
      assert.equal(a, b);
      assert.equal(a, c);
      assert.deepEqual(
        a.tools.map((t) => t.name),
        ['add', 'echo'],
      );
      assert.equal(a.path, join(fixtures, 'counted.ts'));
      assert.equal(imports.count(), 1);
      assert.equal(evaluations.get('counted'), 1);
      assert.equal(loader.size, 1);
    } finally {
      imports.stop();
    }
  });

  it('finds named exports that are tools, ignoring other exports', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    const named = await loader.load('named.ts');
    assert.deepEqual(
      named.tools.map((t) => t.name),
      ['to_lower', 'to_upper'], // a module namespace lists exports in name order
    );
    assert.deepEqual([...named.exports.keys()], ['lower', 'upper']);
  });

  it('loads one tool by its name, or by its export name', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    const byName = await loader.loadTool('named.ts', 'to_lower');
    assert.equal(byName.name, 'to_lower');
    assert.equal(await loader.loadTool('named.ts', 'lower'), byName);
    assert.equal(await byName.execute({ text: 'ABC' }, {} as never), 'abc');
  });

  it('names the file and the tool when a tool is not in the module', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    await assert.rejects(
      loader.loadTool('named.ts', 'to_title'),
      code(
        'TOOL_NOT_FOUND',
        new RegExp(
          `^tool module ${join(fixtures, 'named.ts')} has no tool named "to_title" \\(it exports: to_lower, to_upper\\)$`,
        ),
      ),
    );
    await assert.rejects(
      loader.loadTool('named.ts', 'version'),
      code('TOOL_NOT_FOUND', /no tool named "version"/),
    );
  });

  it('says when the file does not exist', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    await assert.rejects(
      loader.load('missing.ts'),
      code('TOOL_NOT_FOUND', new RegExp(`^tool module ${join(fixtures, 'missing.ts')} does not exist$`)),
    );
    assert.equal(loader.size, 0);
  });

  it('says when importing the module throws, with the original message', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    await assert.rejects(
      loader.load('throws.ts'),
      code('TOOL_NOT_FOUND', /throws\.ts failed to load: fixture exploded while importing$/),
    );
  });

  it('says when a module exports no tools, even things shaped like tools', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures });
    await assert.rejects(loader.load('no-tools.ts'), code('TOOL_NOT_FOUND', /no-tools\.ts exports no tools/));
    await assert.rejects(
      loader.load('bad-default.ts'),
      code('TOOL_NOT_FOUND', /bad-default\.ts: default export item 1 is not a tool made with defineTool/),
    );
  });

  it('refuses paths outside the base directory unless allowed, and files that are not modules', async () => {
    const loader = new ModuleToolLoader({ baseDir: join(fixtures, 'nowhere') });
    await assert.rejects(
      async () => loader.load('../counted.ts'),
      code('TOOL_NOT_FOUND', /outside the tool base directory/),
    );
    await assert.rejects(
      async () => loader.load('/etc/passwd'),
      code('TOOL_NOT_FOUND', /outside the tool base directory/),
    );
    const open = new ModuleToolLoader({ baseDir: join(fixtures, 'nowhere'), allowOutsideBaseDir: true });
    assert.equal((await open.load('../counted.ts')).tools.length, 2);
    await assert.rejects(
      async () => open.load('../data.json'),
      code('TOOL_NOT_FOUND', /must be a \.js, .* file/),
    );
  });

  it('applies prepare once per tool at load', async () => {
    const prepared: string[] = [];
    const loader = new ModuleToolLoader({
      baseDir: fixtures,
      prepare: (tool: Tool) => {
        prepared.push(tool.name);
        return tool;
      },
    });
    await loader.load('named.ts');
    await loader.load('named.ts');
    await loader.loadTool('named.ts', 'to_upper');
    assert.deepEqual(prepared, ['to_lower', 'to_upper']);
  });

  it('keeps at most maxModules modules, dropping the least recently used', async () => {
    const loader = new ModuleToolLoader({ baseDir: fixtures, maxModules: 2 });
    const counted = await loader.load('counted.ts');
    const named = await loader.load('named.ts');
    await loader.load('counted.ts'); // now named.ts is the least recently used
    await loader.load('bad-schema.ts');
    assert.equal(loader.size, 2);
    assert.equal(await loader.load('counted.ts'), counted);
    assert.notEqual(await loader.load('named.ts'), named);
  });

  it('forgets a failed load, so a file created later loads', async () => {
    const loader = new ModuleToolLoader({ baseDir: temp.dir });
    await assert.rejects(loader.load('later.ts'), code('TOOL_NOT_FOUND', /does not exist/));
    const toolUrl = pathToFileURL(join(import.meta.dirname, '../../src/tools/tool.ts')).href;
    writeFileSync(
      join(temp.dir, 'later.ts'),
      `import { defineTool } from ${JSON.stringify(toolUrl)};\n` +
        `export const late = defineTool({ name: 'late', description: 'Arrived later.', inputSchema: { type: 'object' }, execute: () => 1 });\n`,
    );
    assert.deepEqual(
      (await loader.load('later.ts')).tools.map((t) => t.name),
      ['late'],
    );
  });
});
