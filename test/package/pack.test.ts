/**
 * The published package, as a user gets it: `npm pack` (which builds `dist/` through `prepack`),
 * `npm install` of the tarball into an empty folder, then the library imported by name, a demo
 * run on a SQLite file, the README's example as written, the installed `agentpool` bin (`--help`,
 * `--version`, `serve` answering a run over HTTP and draining on SIGTERM), and a TypeScript consumer
 * type-checked against the installed declarations.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import { childEnv, freePort } from '../support/cli-process.ts';
import { tempDir } from '../support/temp-dir.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (no shell); never rejects, so the test can show what it printed. */
function exec(file: string, args: string[], options: { cwd: string; timeoutMs?: number }): Promise<Result> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { ...childEnv({}), PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        done({ code, stdout, stderr });
      },
    );
  });
}

/**
 * The imports of `dist/index.d.ts` and of every declaration file of the package it reaches that do
 * not resolve, from where they are installed, to declaration files (`node:` modules are the
 * consumer's @types/node).
 */
function unresolvedTypeImports(packageDir: string): string[] {
  const options = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const seen = new Set<string>();
  const queue = [join(packageDir, 'dist/index.d.ts')];
  const unresolved: string[] = [];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName: specifier } of importedFiles) {
      if (specifier.startsWith('node:')) continue;
      const resolved = ts.resolveModuleName(
        specifier,
        file,
        options,
        ts.sys,
        undefined,
        undefined,
        ts.ModuleKind.ESNext,
      ).resolvedModule?.resolvedFileName;
      if (resolved === undefined || !/\.d\.[cm]?ts$/.test(resolved)) {
        unresolved.push(`${file.slice(packageDir.length + 1)}: ${specifier} (${resolved ?? 'not found'})`);
      } else if (resolved.startsWith(packageDir)) {
        queue.push(resolved);
      }
    }
  }
  assert.ok(seen.size > 10, `the walk reached only ${seen.size} declaration files`);
  return unresolved;
}

function ok(result: Result, what: string): Result {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

describe('the npm package', () => {
  const tmp = tempDir('agentpool-pack-');
  const out = join(tmp.dir, 'out');
  const app = join(tmp.dir, 'app');
  const bin = join(app, 'node_modules/.bin/agentpool');
  let tarball = '';
  let files: string[] = [];

  before(
    async () => {
      mkdirSync(out);
      mkdirSync(app);
      // `prepack` builds dist/ first, as `npm publish` would.
      ok(
        await exec('npm', ['pack', '--pack-destination', out], { cwd: ROOT, timeoutMs: 240_000 }),
        'npm pack',
      );
      const tgz = readdirSync(out).filter((f) => f.endsWith('.tgz'));
      assert.deepEqual(tgz, [`${PACKAGE.name}-${PACKAGE.version}.tgz`]);
      tarball = join(out, tgz[0]!);
      files = ok(await exec('tar', ['-tzf', tarball], { cwd: out }), 'tar')
        .stdout.split('\n')
        .filter((line) => line !== '' && !line.endsWith('/'))
        .map((line) => line.replace(/^package\//, ''));

      writeFileSync(
        join(app, 'package.json'),
        JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
      );
      ok(
        await exec('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
          cwd: app,
          timeoutMs: 240_000,
        }),
        'npm install',
      );
    },
    { timeout: 480_000 },
  );
  after(() => tmp.cleanup());

  it('ships the build with declarations, the bundled agents file, README and LICENSE, and nothing else', () => {
    for (const needed of [
      'package.json',
      'README.md',
      'LICENSE',
      'examples/agents.yaml',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/cli/commands/serve.js',
      'dist/server/dashboard/assets/index.html',
      'dist/server/dashboard/assets/dashboard.js',
      'dist/server/dashboard/assets/dashboard.css',
    ]) {
      assert.ok(files.includes(needed), `${needed} is missing from the tarball`);
    }
    const stray = files.filter(
      (f) =>
        !['package.json', 'README.md', 'LICENSE', 'examples/agents.yaml'].includes(f) &&
        !/^dist\/.+\.(js|d\.ts|js\.map)$/.test(f) &&
        !/^dist\/server\/dashboard\/assets\/(index\.html|dashboard\.css)$/.test(f),
    );
    assert.deepEqual(stray, [], 'files that have no place in the package');
    assert.deepEqual(
      files.filter(
        (f) => /^(src|test|bench|data|docs)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
      ),
      [],
    );
  });

  it('keeps the shebang of the bin and rewrites the .ts imports of the build', () => {
    const installed = join(app, 'node_modules', PACKAGE.name);
    const main = readFileSync(join(installed, 'dist/cli/main.js'), 'utf8');
    assert.ok(main.startsWith('#!/usr/bin/env node\n'), main.slice(0, 40));
    assert.match(main, /import\(["']\.\/commands\/serve\.js["']\)/);
    for (const file of files.filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(installed, file), 'utf8');
      assert.doesNotMatch(text, /from ["']\.{1,2}\/[^"']*\.ts["']/, `${file} imports a .ts file`);
    }
  });

  it('imports createAgentPool from "agentpool" and runs the demo agent on a SQLite data dir', async () => {
    const dataDir = join(tmp.dir, 'library-data');
    writeFileSync(
      join(app, 'demo.mjs'),
      `import { createAgentPool, DEFAULT_PROJECT } from 'agentpool';
const pool = await createAgentPool({ dataDir: process.argv[2], pool: { maxActive: 10 } });
try {
  const { agent, result } = await pool.agents.apply(DEFAULT_PROJECT, {
    name: 'support',
    model: 'demo/assistant',
    tools: ['builtin:calculator'],
  });
  const thread = await pool.threads.create(DEFAULT_PROJECT);
  const handle = await pool.runs.start(DEFAULT_PROJECT, 'support', { input: 'what is 17*23', threadId: thread.id });
  let streamed = '';
  for await (const e of handle.stream.events()) if (e.type === 'text.delta') streamed += e.delta;
  const run = await handle.result;
  const messages = await pool.threads.messages(DEFAULT_PROJECT, thread.id);
  console.log(JSON.stringify({
    resolved: import.meta.resolve('agentpool'),
    result,
    version: agent.activeVersion,
    status: run.status,
    output: run.output,
    streamed,
    roles: messages.data.map((m) => m.role),
  }));
} finally {
  await pool.close();
}
`,
    );
    const { stdout } = ok(
      await exec(process.execPath, ['demo.mjs', dataDir], { cwd: app }),
      'the demo script',
    );
    const report = JSON.parse(stdout) as Record<string, unknown>;
    assert.match(String(report.resolved), /\/node_modules\/agentpool\/dist\/index\.js$/);
    assert.deepEqual(
      { ...report, resolved: undefined },
      {
        resolved: undefined,
        result: 'created',
        version: 1,
        status: 'succeeded',
        output: '[demo] 17*23 = 391',
        streamed: '[demo] 17*23 = 391',
        roles: ['user', 'assistant', 'tool', 'assistant'],
      },
    );
    assert.ok(existsSync(join(dataDir, 'agentpool.db')), 'the SQLite file is in the data dir');
  });

  it("runs the README's library example as written, printing what its comments say", async () => {
    const readme = readFileSync(join(app, 'node_modules/agentpool/README.md'), 'utf8');
    const example = /^## Use it\n\n```ts\n([^]*?)^```$/m.exec(readme)?.[1];
    assert.ok(example !== undefined, 'the README has a ts example under "Use it"');
    assert.match(example, /from 'agentpool'/);
    writeFileSync(join(app, 'readme-example.ts'), example);
    const expected = [
      'created 1',
      '[demo] 17*23 = 391',
      'succeeded 2 [demo] 17*23 = 391',
      '1 busy',
      '{ active: 1, hits: 1, misses: 1, activations: 1 }',
    ];
    const first = ok(await exec(process.execPath, ['readme-example.ts'], { cwd: app }), 'the README example');
    assert.deepEqual(first.stdout.trimEnd().split('\n'), expected);
    // its comments say: unchanged when run again, in its own data directory
    const again = ok(await exec(process.execPath, ['readme-example.ts'], { cwd: app }), 'the README example');
    // and the restart prewarmed the agent from its working-set checkpoint: the run's lease is a hit
    assert.deepEqual(again.stdout.trimEnd().split('\n'), [
      'unchanged 1',
      ...expected.slice(1, -1),
      '{ active: 1, hits: 2, misses: 1, activations: 1 }',
    ]);
    assert.ok(existsSync(join(app, 'example-data/agentpool.db')));
  });

  it('installs an agentpool bin that prints --help and --version', async () => {
    const help = ok(await exec(bin, ['--help'], { cwd: app }), 'agentpool --help');
    assert.match(help.stdout, /^Usage: agentpool /);
    assert.match(help.stdout, /\n {2}serve /);
    const version = ok(await exec(bin, ['--version'], { cwd: app }), 'agentpool --version');
    assert.equal(version.stdout, `${PACKAGE.version}\n`);
    const npx = ok(
      await exec('npx', ['--no', '--', 'agentpool', '--version'], { cwd: app }),
      'npx agentpool --version',
    );
    assert.equal(npx.stdout, `${PACKAGE.version}\n`);
  });

  it('runs the installed `agentpool serve` with the bundled agents, answers a run, and drains on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(bin, ['serve', '--port', String(port), '--data-dir', join(tmp.dir, 'served')], {
      cwd: app,
      env: { ...childEnv({}), PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      while (!/listening on/.test(output)) {
        if (child.exitCode !== null) assert.fail(`serve exited early:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(output, /node_modules\/agentpool\/examples\/agents\.yaml/);
      const res = await fetch(`${url}/v1/agents/support/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: 'what is 17*23' }),
      });
      assert.equal(res.status, 200);
      const run = (await res.json()) as { status: string; output: string };
      assert.deepEqual([run.status, run.output], ['succeeded', '[demo] 17*23 = 391']);
      // The dashboard's assets ship in the package (copied into dist/ by the build).
      for (const [path, type] of [
        ['/dashboard', /^text\/html/],
        ['/dashboard/dashboard.js', /^text\/javascript/],
        ['/dashboard/dashboard.css', /^text\/css/],
      ] as const) {
        const asset = await fetch(`${url}${path}`);
        assert.equal(asset.status, 200, path);
        assert.match(asset.headers.get('content-type') ?? '', type, path);
      }
      child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      assert.match(output, /\nstopped\n/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('type-checks a TypeScript consumer against the installed declarations', async () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2024',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          // Other packages' declarations are theirs to check (and slow to); ours are walked below.
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(app, 'consumer.ts'),
      `import {
  type AgentPool,
  AgentPoolError,
  createAgentPool,
  DEFAULT_PROJECT,
  defineTool,
  isAgentPoolError,
  type RunRecord,
} from 'agentpool';

// The declarations are real types, not \`any\`.
type IsAny<T> = 0 extends 1 & T ? true : false;
export const notAny: [IsAny<AgentPool>, IsAny<RunRecord>, IsAny<typeof createAgentPool>] = [false, false, false];

const pool: AgentPool = await createAgentPool({ store: 'memory', pool: { maxActive: 10 } });
const { agent } = await pool.agents.apply(DEFAULT_PROJECT, { name: 'support', tools: ['builtin:calculator'] });
export const version: number = agent.activeVersion;
const handle = await pool.runs.start(DEFAULT_PROJECT, 'support', { input: 'hi' });
const run: RunRecord = await handle.result;
export const status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted' = run.status;
export const tool = defineTool({
  name: 'noop',
  description: 'does nothing',
  inputSchema: { type: 'object', properties: {} },
  execute: async () => 'ok',
});
export const failed = (err: unknown): string | undefined =>
  isAgentPoolError(err) ? err.code : err instanceof AgentPoolError ? 'never' : undefined;
// @ts-expect-error maxActive is a number
await createAgentPool({ pool: { maxActive: 'many' } });
await pool.close();
`,
    );
    ok(await exec(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: app }), 'tsc');
    // skipLibCheck would hide a declaration of ours that imports a module the install lacks types
    // for (a type package that is only a devDependency): every module the public declarations
    // reach must resolve to declarations in the consumer's node_modules.
    assert.deepEqual(unresolvedTypeImports(join(app, 'node_modules/agentpool')), []);
  });
});
