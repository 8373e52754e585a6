import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  ModuleToolLoader,
  type RefusedReload,
  resolveModuleToolLoaderOptions,
} from '../../src/tools/module-tools.ts';
import { ToolCatalog } from '../../src/tools/catalog.ts';
import type { ToolContext } from '../../src/tools/tool.ts';
import { tempDir } from '../support/temp-dir.ts';

const TOOL_TS = join(import.meta.dirname, '../../src/tools/tool.ts');
const ctx = {} as ToolContext;

/** Writes a tool module whose one tool `greet` answers `answer`; each write gets a later mtime. */
function writer(dir: string) {
  let tick = 1_700_000_000;
  return (file: string, answer: string): string => {
    const path = join(dir, file);
    writeFileSync(
      path,
      `import { defineTool } from ${JSON.stringify(TOOL_TS)};\n` +
        `export const greet = defineTool({ name: 'greet', description: 'Greets.', ` +
        `inputSchema: { type: 'object', properties: {} }, execute: () => ${JSON.stringify(answer)} });\n`,
    );
    tick += 10;
    utimesSync(path, tick, tick);
    return path;
  };
}

async function answer(loader: ModuleToolLoader, file: string): Promise<unknown> {
  const [tool] = (await loader.load(file)).tools;
  return tool?.execute({}, ctx);
}

describe('module tools that reload', () => {
  const temp = tempDir();
  after(temp.cleanup);
  let n = 0;
  /** A fresh directory per test: Node keeps every module URL for the process's life. */
  const setup = (options: ConstructorParameters<typeof ModuleToolLoader>[0] = {}) => {
    const dir = join(temp.dir, `t${++n}`);
    mkdirSync(dir);
    return { write: writer(dir), loader: new ModuleToolLoader({ baseDir: dir, ...options }) };
  };

  it('defaults to reloading, 20 contents per file and 1000 re-imports, and names a bad value', () => {
    const o = resolveModuleToolLoaderOptions();
    assert.deepEqual([o.reload, o.maxModuleVersions, o.maxReloads], [true, 20, 1000]);
    assert.throws(
      () => resolveModuleToolLoaderOptions({ maxModuleVersions: 0 }),
      /tools\.maxModuleVersions must be a positive integer/,
    );
    assert.throws(() => resolveModuleToolLoaderOptions({ reload: 'yes' as never }), /tools\.reload must be/);
    assert.equal(resolveModuleToolLoaderOptions({ maxReloads: 0 }).maxReloads, 0, 'no reloads at all');
  });

  it('serves the cached version while the file is unchanged, and imports it again once it changed', async () => {
    const { write, loader } = setup();
    write('greet.ts', 'v1');
    const first = await loader.load('greet.ts');
    assert.equal(await first.tools[0]?.execute({}, ctx), 'v1');
    assert.equal(await loader.load('greet.ts'), first, 'unchanged: the same tools');
    write('greet.ts', 'version 2');
    const second = await loader.load('greet.ts');
    assert.notEqual(second, first);
    assert.notEqual(second.version, first.version);
    assert.equal(await second.tools[0]?.execute({}, ctx), 'version 2');
    assert.deepEqual(loader.stats(), {
      modules: 1,
      loads: 1,
      reloads: 1,
      cacheHits: 1,
      reloadsRefused: 0,
      versions: 2,
    });
  });

  it('does not import a file rewritten with the same content (a new mtime alone)', async () => {
    const { write, loader } = setup();
    write('same.ts', 'v1');
    const first = await loader.load('same.ts');
    write('same.ts', 'v1');
    assert.equal(await loader.load('same.ts'), first);
    assert.deepEqual([loader.stats().reloads, loader.stats().versions, loader.stats().cacheHits], [0, 1, 1]);
  });

  it('reuses the earlier import when a file flips back to an earlier content', async () => {
    const { write, loader } = setup();
    write('flip.ts', 'A');
    const a = await loader.load('flip.ts');
    write('flip.ts', 'BB');
    assert.equal(await answer(loader, 'flip.ts'), 'BB');
    write('flip.ts', 'A');
    const again = await loader.load('flip.ts');
    assert.equal(again.version, a.version);
    assert.equal(again.tools[0], a.tools[0], "Node's module of that content, not a new one");
    assert.deepEqual([loader.stats().reloads, loader.stats().versions], [2, 2]);
  });

  it('checks a file again after it left the cache, without importing a content it already has', async () => {
    const { write, loader } = setup();
    write('gone.ts', 'v1');
    const first = await loader.load('gone.ts');
    assert.equal(loader.forget('gone.ts'), true);
    const back = await loader.load('gone.ts');
    assert.equal(back.tools[0], first.tools[0]);
    assert.deepEqual([loader.stats().loads, loader.stats().versions], [2, 1]);
  });

  it('caps the contents of one file: past maxModuleVersions a change is refused, reported, and the loaded version serves', async () => {
    const refused: RefusedReload[] = [];
    const { write, loader } = setup({ maxModuleVersions: 2, onReloadRefused: (r) => refused.push(r) });
    write('capped.ts', 'v1');
    await loader.load('capped.ts');
    write('capped.ts', 'v22');
    assert.equal(await answer(loader, 'capped.ts'), 'v22');
    const path = write('capped.ts', 'v333');
    assert.equal(await answer(loader, 'capped.ts'), 'v22', 'the third content is not imported');
    assert.equal(await answer(loader, 'capped.ts'), 'v22');
    assert.equal(refused.length, 1, 'reported once per change, not per load');
    assert.deepEqual(
      { ...refused[0], hash: undefined },
      { path, hash: undefined, limit: 'maxModuleVersions', max: 2 },
    );
    write('capped.ts', 'v1');
    assert.equal(await answer(loader, 'capped.ts'), 'v1', 'a content already imported is still served');
    assert.deepEqual([loader.stats().reloadsRefused, loader.stats().versions], [1, 2]);
  });

  it('caps re-imports over the loader: past maxReloads no changed file is imported', async () => {
    const refused: RefusedReload[] = [];
    const { write, loader } = setup({ maxReloads: 1, onReloadRefused: (r) => refused.push(r) });
    write('a.ts', 'a1');
    write('b.ts', 'b1');
    await Promise.all([loader.load('a.ts'), loader.load('b.ts')]);
    write('a.ts', 'a22');
    write('b.ts', 'b22');
    assert.equal(await answer(loader, 'a.ts'), 'a22');
    assert.equal(await answer(loader, 'b.ts'), 'b1');
    assert.equal(refused[0]?.limit, 'maxReloads');
    assert.deepEqual(
      [loader.stats().reloads, loader.stats().reloadsRefused, loader.stats().versions],
      [1, 1, 3],
    );
  });

  it('fails a first load past the caps with TOOL_NOT_FOUND saying why', async () => {
    const { write, loader } = setup({ maxModuleVersions: 1 });
    write('first.ts', 'v1');
    await loader.load('first.ts');
    loader.clear();
    write('first.ts', 'v22');
    await assert.rejects(
      loader.load('first.ts'),
      (err) =>
        isAgentPoolError(err) &&
        err.code === 'TOOL_NOT_FOUND' &&
        /tools\.maxModuleVersions 1 reached/.test(err.message),
    );
  });

  it('with reload off, serves the cached version until refresh() checks the file', async () => {
    const { write, loader } = setup({ reload: false });
    const path = write('manual.ts', 'v1');
    const first = await loader.load('manual.ts');
    write('manual.ts', 'v22');
    assert.equal(await answer(loader, 'manual.ts'), 'v1');
    const { changed, failed } = await loader.refresh();
    assert.deepEqual(changed, [{ path, from: first.version, to: loader.versionOf('manual.ts') }]);
    assert.deepEqual(failed, []);
    assert.equal(await answer(loader, 'manual.ts'), 'v22');
    assert.deepEqual((await loader.refresh('manual.ts')).changed, [], 'nothing changed since');
  });

  it('imports a changed file once for concurrent loads', async () => {
    const { write, loader } = setup();
    write('busy.ts', 'v1');
    await loader.load('busy.ts');
    write('busy.ts', 'v22');
    const loaded = await Promise.all([1, 2, 3].map(() => loader.load('busy.ts')));
    assert.equal(new Set(loaded).size, 1);
    assert.deepEqual([loader.stats().reloads, loader.stats().versions], [1, 2]);
  });

  it('fails a load when the changed file is broken, keeping the cached version for refresh()', async () => {
    const { write, loader } = setup();
    const path = write('broken.ts', 'v1');
    await loader.load('broken.ts');
    writeFileSync(path, 'export const = ;');
    await assert.rejects(
      loader.load('broken.ts'),
      (err) => isAgentPoolError(err) && err.code === 'TOOL_NOT_FOUND',
    );
    const { changed, failed } = await loader.refresh();
    assert.deepEqual(changed, []);
    assert.equal(failed[0]?.path, path);
    write('broken.ts', 'fixed');
    assert.equal(await answer(loader, 'broken.ts'), 'fixed');
  });

  it("gives the catalog's next resolution (an activation) the new tools, labelled with their version", async () => {
    const dir = join(temp.dir, `t${++n}`);
    mkdirSync(dir);
    const write = writer(dir);
    write('cat.ts', 'v1');
    const catalog = new ToolCatalog({ baseDir: dir });
    const [before] = await catalog.resolve(['module:./cat.ts']);
    assert.ok(before !== undefined);
    const v1 = catalog.originOf(before)?.module?.version;
    assert.equal(v1, (await catalog.modules.load('cat.ts')).version);
    assert.match(v1 ?? '', /^[0-9a-f]+$/, 'a content hash');
    assert.deepEqual(catalog.originOf(before), {
      source: 'module',
      ref: 'module:./cat.ts',
      module: { path: join(dir, 'cat.ts'), version: v1 },
    });
    assert.deepEqual(await catalog.resolve(['module:./cat.ts#greet']), [before], 'unchanged: the same tool');
    write('cat.ts', 'v22');
    const [after] = await catalog.resolve(['module:./cat.ts#greet']);
    assert.ok(after !== undefined && after !== before);
    assert.equal(await after.execute({}, ctx), 'v22');
    assert.notEqual(catalog.originOf(after)?.module?.version, v1);
    assert.equal(await before.execute({}, ctx), 'v1', 'a live instance keeps the tools it has');
  });
});
