/**
 * Helpers of the client-command tests: the CLI's `main()` driven in this process with captured
 * output (as fast as a function call, and still real HTTP), and a real server listening on a free
 * port over a memory pool with a scriptable slow model (`slow/…`, from the server tests).
 */
import type { AddressInfo } from 'node:net';
import { main } from '../../src/cli/main.ts';
import type { ServerOptions } from '../../src/server/app.ts';
import { serverFixture } from '../server/support.ts';

/** What one CLI invocation printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `agentpool <args>` in this process with `env` as its environment. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'agentpool', ...args], {
    out: (line) => (stdout += `${line}\n`),
    err: (line) => (stderr += `${line}\n`),
    write: (text) => (stdout += text),
    colors: false,
    env,
  });
  return { code, stdout, stderr };
}

/** A server over a memory pool (with the `slow` provider) listening on 127.0.0.1 on a free port. */
export async function listeningServer(options: ServerOptions = {}) {
  const fixture = await serverFixture(options);
  await fixture.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = fixture.app.server.address() as AddressInfo;
  return { ...fixture, url: `http://127.0.0.1:${port}` };
}
