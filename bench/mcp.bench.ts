/**
 * MCP tools: the per-step tool overhead of agentpool against a naive client that opens a session
 * and lists the tools for every call, on the same local MCP server over Streamable HTTP (the SDK's
 * server, test/support/mcp-server.ts, in a child process: this script with `--server`), and the
 * added cost of an MCP tool call over a direct in-process tool. All measured in the same run, the
 * contenders interleaved call by call in a seeded shuffled order so machine load hits them alike.
 *
 * Every contender but the bare client is a tool of the same pool, called through the catalog as
 * the runner calls it (input checked, the run's signal, output normalised), so they differ only in
 * how the call reaches the server:
 *   - naive: a tool whose every call makes a new SDK Client + StreamableHTTPClientTransport,
 *     connects (initialize), lists the tools, calls, closes.
 *   - floor: a tool calling tools/call on one connected SDK Client: the call itself.
 *   - agentpool: the tool as an agent's instance holds it (`mcp:bench`), over the shared session
 *     and the cached list.
 *   - in-process: the same echo defined in code (`custom:`).
 *   - bare client: one connected SDK Client calling tools/call, outside any tool path (to show
 *     what the whole tool path adds).
 * A contender's time outside the SDK's `Client.callTool` (the request itself, which every contender
 * pays; read by wrapping that method here, so the network's noise in the call does not blur the
 * rest) is measured call by call. Each timed call lasts until the event loop has drained (a
 * setImmediate), so the SDK's work after the answer is counted for everyone alike. A contender's
 * per-step overhead is its time outside tools/call minus the floor's.
 *
 *   node --expose-gc bench/mcp.bench.ts        (about half a minute; BENCH_CALLS, BENCH_ROUNDS override)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createAgentPool } from '../src/agent-pool.ts';
import { toolOutput } from '../src/tools/mcp/mcp-tools.ts';
import { defineTool, type Tool } from '../src/tools/tool.ts';
import { startMcpServer } from '../test/support/mcp-server.ts';
import { mulberry32 } from '../test/support/seeded-random.ts';
import { quantile, summarize, table, timeBatches, writeResult } from './harness.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP = 50;
const SEED = 20_261_203;
const P = 'bench';

if (process.argv.includes('--server')) {
  const server = await startMcpServer({ toolsFor: () => ['echo', 'add', 'lookup'] });
  process.stdout.write(`${server.url}\n`);
} else {
  await main();
}

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--server'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the MCP server exited (${code})`)));
  });
  return { url, child };
}

async function main(): Promise<void> {
  const { url, child } = await startServer();
  const echo = defineTool({
    name: 'echo',
    description: 'Echoes its text.',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    execute: (input) => `echo: ${input.text as string}`,
  });
  const pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0, tools: { tools: [echo] } });
  try {
    await pool.projects.create({ id: P });
    await pool.mcp.put(P, 'bench', { transport: 'http', url });
    const live = await pool.tools.resolveLive(['mcp:bench', 'custom:echo'], P);
    const ctx = {
      signal: new AbortController().signal,
      project: P,
      agent: 'a',
      runId: 'run_bench',
      threadId: null,
      idempotencyKey: 'run_bench:1:0',
    };
    const input = { text: 'hello' };
    const connected = async (name: string): Promise<Client> => {
      const client = new Client({ name, version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url)));
      return client;
    };
    const echoOf = (name: string, call: (signal: AbortSignal) => Promise<unknown>) =>
      defineTool({
        name,
        description: 'Echoes its text over MCP.',
        inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
        execute: async (_input, { signal }) => toolOutput('bench', 'echo', (await call(signal)) as never),
        ownTimeout: true, // as the `mcp:` tool: the SDK's request timeout bounds the call
      });
    const floorClient = await connected('bench-floor');
    const floorTool = echoOf('floor_echo', (signal) =>
      floorClient.callTool({ name: 'echo', arguments: input }, undefined, { signal }),
    );
    const naiveTool = echoOf('naive_echo', async (signal) => {
      const client = new Client({ name: 'bench-naive', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(url));
      await client.connect(transport, { signal });
      const { tools } = await client.listTools(undefined, { signal });
      if (!tools.some((t) => t.name === 'echo')) throw new Error('no echo tool');
      const result = await client.callTool({ name: 'echo', arguments: input }, undefined, { signal });
      await transport.terminateSession();
      await client.close();
      return result;
    });
    const through = (find: () => Tool) => async (): Promise<void> => {
      const result = await pool.tools.run(find(), input, ctx);
      if (!result.ok) throw new Error(JSON.stringify(result));
    };
    // What a step does for the `mcp:` tool: the instance's tools as of now, the tool by name, the call.
    const agentpool = through(() => live.current.find((t) => t.name === 'bench__echo')!);
    const inProcess = through(() => live.current.find((t) => t.name === 'echo')!);
    const bare = await connected('bench-bare');
    const bareCall = async (): Promise<void> => {
      await bare.callTool({ name: 'echo', arguments: input });
    };
    // The time inside the SDK's callTool of the last call: the request itself.
    let inside = 0;
    const callTool = Client.prototype.callTool;
    Client.prototype.callTool = async function (this: Client, ...args: Parameters<typeof callTool>) {
      const t0 = performance.now();
      try {
        return await callTool.apply(this, args);
      } finally {
        inside = performance.now() - t0;
      }
    };

    const contenders = {
      naive: through(() => naiveTool),
      floor: through(() => floorTool),
      agentpool,
      inProcess,
      bare: bareCall,
    } as const;
    type Name = keyof typeof contenders;
    const names = Object.keys(contenders) as Name[];
    const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
    const overhead = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
    for (const fn of Object.values(contenders)) for (let i = 0; i < WARMUP; i++) await fn();
    const entries = Object.entries(contenders) as [Name, () => Promise<void>][];
    const random = mulberry32(SEED);
    for (let i = 0; i < ROUNDS * CALLS; i++) {
      // One call of each per iteration in a shuffled order (a fixed rotation would always put
      // the same contender after the naive one, whose garbage and closing sockets spill over),
      // with an untimed turn of the event loop between calls.
      for (let k = entries.length - 1; k > 0; k--) {
        const j = Math.floor(random() * (k + 1));
        [entries[k], entries[j]] = [entries[j]!, entries[k]!];
      }
      for (const [name, fn] of entries) {
        await new Promise((resolve) => setImmediate(resolve));
        inside = 0;
        const t0 = performance.now();
        await fn();
        await new Promise((resolve) => setImmediate(resolve));
        const total = performance.now() - t0;
        samples[name].push(total * 1000);
        overhead[name].push((total - inside) * 1000);
      }
    }
    await Promise.all([floorClient.close(), bare.close()]);
    const stats = pool.mcp.stats().servers[0]!;

    const med = (xs: number[]) =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    const p99 = (xs: number[]) =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.99,
      );
    const m = Object.fromEntries(
      names.map((n) => [n, { total: med(samples[n]), outside: med(overhead[n]), p99: p99(samples[n]) }]),
    ) as Record<Name, { total: number; outside: number; p99: number }>;
    const naiveNet = m.naive.outside - m.floor.outside;
    // At least 1 µs: below that the difference of two medians is timer noise.
    const agentpoolNet = Math.max(1, m.agentpool.outside - m.floor.outside);
    const ratio = naiveNet / agentpoolNet;
    // agentpool's whole tool path (input check, the run's signal, output normalised) and its MCP
    // layer over a bare connected client that is no tool at all.
    const wholePath = m.agentpool.outside - m.bare.outside;
    // What agentpool does per step for the session and the list alone (no I/O): the instance's
    // tools as of the cached list, the tool by name. Batch-timed: it is below the timer's grain.
    const lookupNs = summarize(
      await timeBatches(() => live.current.find((t) => t.name === 'bench__echo'), {
        batches: 200,
        batch: 10_000,
      }),
    ).median;
    const f = (x: number) => x.toFixed(1);
    const row = (name: Name, label: string, what: string) => [label, f(m[name].total), f(m[name].p99), what];
    const summary = [
      `Local MCP server (the SDK's McpServer, stateful Streamable HTTP) in its own process; ${ROUNDS * CALLS} calls per contender, interleaved call by call in a shuffled order; µs per call, each until the event loop drained. All but the bare client are tools called through the pool's catalog as the runner calls them.`,
      '',
      table(
        ['contender', 'median µs', 'p99 µs', 'what it does per call'],
        [
          row('naive', 'naive client (a tool)', 'new session (initialize), tools/list, tools/call, close'),
          row('floor', 'connected client (a tool; the floor)', 'tools/call on one connected session'),
          row('agentpool', 'agentpool `mcp:` tool', "the instance's tools, the call over the shared session"),
          row('inProcess', 'agentpool in-process tool', 'the same echo defined in code'),
          row('bare', 'bare SDK client (no tool)', 'tools/call on a connected session, nothing around it'),
        ],
      ),
      '',
      table(
        ['figure', 'value', 'target', ''],
        [
          ['floor: its time outside tools/call, median', `${f(m.floor.outside)} µs`, '', ''],
          ['naive: outside tools/call (connect, list, close), median', `${f(m.naive.outside)} µs`, '', ''],
          ['agentpool: outside tools/call, median', `${f(m.agentpool.outside)} µs`, '', ''],
          ['naive per-step overhead (its time outside tools/call − the floor)', `${f(naiveNet)} µs`, '', ''],
          ['agentpool per-step overhead (the same)', `${f(agentpoolNet)} µs`, '', ''],
          [
            'naive overhead ÷ agentpool overhead',
            `${ratio.toFixed(0)}×`,
            '≥ 100×',
            ratio >= 100 ? 'met' : 'missed',
          ],
          ['end to end: naive ÷ agentpool', `${(m.naive.total / m.agentpool.total).toFixed(1)}×`, '', ''],
          [
            "agentpool's whole tool path over the bare client (outside tools/call)",
            `${f(wholePath)} µs`,
            '',
            `naive ÷ it: ${(naiveNet / wholePath).toFixed(0)}×`,
          ],
          [
            'added cost of an MCP call over an in-process tool',
            `${f(m.agentpool.total - m.inProcess.total)} µs`,
            '',
            '',
          ],
          [
            "of agentpool's overhead, the session and cached-list lookup per step (batch-timed)",
            `${(lookupNs / 1000).toFixed(3)} µs`,
            '',
            '',
          ],
          ['naive overhead ÷ that lookup', `${(naiveNet / (lookupNs / 1000)).toFixed(0)}×`, '', ''],
        ],
      ),
      '',
      `Server-side: the agentpool contender opened ${stats.opens} session(s) and listed ${stats.listRefreshes} time(s) for ${stats.calls} calls (cache hits: ${stats.listHits}).`,
    ].join('\n');
    writeResult({
      name: 'mcp',
      title: 'MCP tools: per-step overhead against a naive client, and against an in-process tool',
      command: 'node --expose-gc bench/mcp.bench.ts',
      summary,
      data: {
        calls: CALLS,
        rounds: ROUNDS,
        medians: m,
        naiveNet,
        agentpoolNet,
        ratio,
        wholePath,
        lookupNs,
        stats,
      },
    });
  } finally {
    await pool.close();
    child.kill();
  }
}
