/**
 * Helpers of the CLI tests: run `agentpool` as a child process, start `agentpool serve` on a free
 * port and wait for it, and a tiny fake HTTP server for answers a test must pin.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';

/** The CLI entry point. */
export const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

/** A port that was free a moment ago: listen on 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** The test process's environment without AGENTPOOL_* variables, plus `env`. */
export function childEnv(env: Record<string, string>): Record<string, string | undefined> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('AGENTPOOL_')),
  );
  return { ...base, NO_COLOR: '1', ...env };
}

/** What a CLI run printed and how it exited. */
export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function cli(args: string[], env: Record<string, string>): Promise<Result> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: childEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

/** Starts `agentpool serve` on a free port with a temp data dir; resolves once it answers. */
export async function serve(
  dataDir: string,
): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', String(port), '--data-dir', dataDir], {
    env: childEnv({}),
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, child };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  return assert.fail(`the server never answered:\n${output}`);
}

/** A fake server answering each request with `handler`; resolves with its URL. */
export async function fakeServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

/** A CLI child process still running, with what it printed so far. */
export interface CliChild {
  process: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts the CLI with `args` (for example `serve …`) without waiting for it to end. */
export function spawnCli(args: string[], env: Record<string, string> = {}): CliChild {
  const child = spawn(process.execPath, [MAIN, ...args], { env: childEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * Starts `agentpool serve` on a temporary data directory before the enclosing suite and kills it
 * after; call inside `describe`. `url` and `env` (with AGENTPOOL_URL) are readable in the tests.
 */
export function serverForSuite(): { readonly url: string; readonly env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-cli-'));
  let server: { url: string; child: ChildProcessWithoutNullStreams } | undefined;
  before(async () => {
    server = await serve(join(dir, 'data'));
  });
  after(() => {
    if (server !== undefined && server.child.exitCode === null) server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get url() {
      return server?.url ?? assert.fail('the server is not started yet');
    },
    get env() {
      return { AGENTPOOL_URL: this.url };
    },
  };
}
