/**
 * A real MCP server for tests: the SDK's McpServer over a stateful Streamable HTTP transport (one
 * session per initialize, with a session id) on a localhost port. It counts what clients ask
 * (initialize, tools/list, tools/call, cancellations), records the headers it was sent, serves a
 * tool list that may depend on the caller's Authorization header, and can add a tool (clients get
 * `notifications/tools/list_changed`), forget its sessions (the next request with an old id is a
 * 404), restart on the same port, or hang (requests are never answered).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod';

/** What the test server counted. */
export interface McpServerCounts {
  initialize: number;
  list: number;
  call: number;
  cancelled: number;
  /** Requests answered 404 because their session id was unknown. */
  expired: number;
}

/** Options of {@link startMcpServer}. */
export interface TestMcpServerOptions {
  /** The tools served to a caller, by its Authorization header. @default ['echo', 'add', 'slow'] */
  toolsFor?: (authorization: string | undefined) => string[];
  /** Port to listen on. @default a free one */
  port?: number;
}

/** A running test server. */
export interface TestMcpServer {
  readonly url: string;
  readonly port: number;
  readonly counts: McpServerCounts;
  /** The Authorization headers of every initialize, in order. */
  readonly authorizations: (string | undefined)[];
  /** When true, no request is answered (the server hangs). */
  hang: boolean;
  /** Adds a tool to every session (each is sent list_changed). */
  addTool(name: string): void;
  /** Forgets every session: their next request is answered 404. */
  forgetSessions(): Promise<void>;
  /** Stops and starts again on the same port, knowing no session (a restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
}

/** Starts a test MCP server on localhost. */
export async function startMcpServer(options: TestMcpServerOptions = {}): Promise<TestMcpServer> {
  const toolsFor = options.toolsFor ?? (() => ['echo', 'add', 'slow']);
  const counts: McpServerCounts = { initialize: 0, list: 0, call: 0, cancelled: 0, expired: 0 };
  const authorizations: (string | undefined)[] = [];
  const extra: string[] = [];
  let sessions = new Map<string, Session>();
  let http: Server;
  const hanging = new Set<() => void>();

  const register = (server: McpServer, name: string): void => {
    if (name === 'add') {
      server.registerTool(
        'add',
        { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() } },
        ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
      );
    } else if (name === 'slow') {
      server.registerTool(
        'slow',
        { description: 'Never answers until cancelled.', inputSchema: {} },
        (_args, { signal }) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () =>
              resolve({ content: [{ type: 'text', text: 'cancelled' }] }),
            );
          }),
      );
    } else if (name === 'fail') {
      server.registerTool('fail', { description: 'Always fails.', inputSchema: {} }, () => ({
        isError: true,
        content: [{ type: 'text', text: 'it broke' }],
      }));
    } else {
      server.registerTool(
        name,
        { description: `Echoes its text (${name}).`, inputSchema: { text: z.string() } },
        ({ text }) => ({ content: [{ type: 'text', text: `${name}: ${text}` }] }),
      );
    }
  };

  const newSession = (authorization: string | undefined): StreamableHTTPServerTransport => {
    const server = new McpServer(
      { name: 'test-mcp', version: '1.0.0' },
      { capabilities: { tools: { listChanged: true } } },
    );
    for (const name of [...toolsFor(authorization), ...extra]) register(server, name);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    void server.connect(transport);
    return transport;
  };

  const listen = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const s = createServer((req, res) => {
        if (state.hang) {
          hanging.add(() => res.destroy());
          return;
        }
        void handle(req, res);
        async function handle(request: IncomingMessage, response: typeof res): Promise<void> {
          const body = request.method === 'POST' ? await readJson(request) : undefined;
          for (const message of Array.isArray(body) ? body : body === undefined ? [] : [body]) {
            const method = (message as { method?: string }).method;
            if (method === 'initialize') counts.initialize++;
            else if (method === 'tools/list') counts.list++;
            else if (method === 'tools/call') counts.call++;
            else if (method === 'notifications/cancelled') counts.cancelled++;
          }
          const id = request.headers['mcp-session-id'];
          const authorization = request.headers.authorization;
          if (typeof id === 'string') {
            const session = sessions.get(id);
            if (session === undefined) {
              counts.expired++;
              response.writeHead(404, { 'content-type': 'application/json' });
              response.end(
                JSON.stringify({
                  jsonrpc: '2.0',
                  error: { code: -32001, message: 'Session not found' },
                  id: null,
                }),
              );
              return;
            }
            await session.transport.handleRequest(request, response, body);
            return;
          }
          authorizations.push(authorization);
          await newSession(authorization).handleRequest(request, response, body);
        }
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });

  const closeSessions = async (): Promise<void> => {
    const old = sessions;
    sessions = new Map();
    await Promise.all([...old.values()].map((s) => s.server.close().catch(() => undefined)));
  };

  http = await listen(options.port ?? 0);
  const port = (http.address() as AddressInfo).port;
  const stop = async (): Promise<void> => {
    for (const destroy of hanging) destroy();
    hanging.clear();
    await closeSessions();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  const state: TestMcpServer = {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    counts,
    authorizations,
    hang: false,
    addTool(name) {
      extra.push(name);
      for (const { server } of sessions.values()) register(server, name); // sends list_changed
    },
    forgetSessions: closeSessions,
    async restart() {
      await stop();
      http = await listen(port);
    },
    close: stop,
  };
  return state;
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}
