/**
 * A fake OpenAI-compatible server over real HTTP (127.0.0.1, random port) for tests and
 * benchmarks: the model path is exercised through the real provider clients, sockets and SSE.
 * It owns the wire format of POST /v1/chat/completions (JSON and streaming) and GET /v1/models,
 * and a script of replies: text, tool calls, HTTP errors, delays, hangs, dropped streams and
 * streams that fail in band.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One tool call the fake model makes; `arguments` is sent JSON-encoded, as OpenAI does. */
export interface FakeToolCall {
  name: string;
  arguments: Record<string, unknown>;
  /** @default `call_<n>` */
  id?: string;
}

/** Token counts to report instead of the ≈ chars/4 estimate. */
export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** What the fake answers to one chat-completions request. */
export type FakeReply =
  | { text: string; usage?: FakeUsage }
  | { toolCalls: FakeToolCall[]; text?: string; usage?: FakeUsage }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { delayMs: number; then: FakeReply }
  | { hang: true }
  | { dropMidStream: true; text?: string }
  /** Streamed: the opening chunks, then an `error` chunk (as providers report a failure after a 200), then the end. */
  | { errorMidStream: string; text?: string };

/** A chat-completions request body as the fake parsed it. */
export interface FakeChatRequest {
  model: string;
  messages: Array<{ role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }>;
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: unknown } }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

/** Decides the reply to a request; may be async. */
export type FakeHandler = (request: FakeChatRequest) => FakeReply | Promise<FakeReply>;

/** Options of the fake server. */
export interface FakeOpenAIOptions {
  /** Answers requests once the scripted queue is empty. @default echo of the last user message */
  handler?: FakeHandler;
  /** Model ids listed by GET /v1/models. @default ['fake-model'] */
  models?: string[];
  /** Pause between streamed chunks, to let tests abort mid-stream. @default 0 */
  chunkDelayMs?: number;
  /** Most requests kept in `requests`/`headers` (oldest dropped first); 0 for benchmarks. @default 10000 */
  maxRecorded?: number;
}

/** A running fake server. */
export interface FakeOpenAI {
  /** Base URL ending in `/v1`, e.g. `http://127.0.0.1:53211/v1`. */
  readonly url: string;
  /** Parsed body of each chat-completions request, in arrival order (the latest `maxRecorded`). */
  readonly requests: FakeChatRequest[];
  /** Request headers, aligned with `requests`. */
  readonly headers: IncomingHttpHeaders[];
  /** Requests whose client went away before the reply was complete (aborts, hangs). */
  readonly aborted: number;
  /** Queues replies (or one-shot handlers) for the next requests, in order. */
  script(...replies: Array<FakeReply | FakeHandler>): void;
  /** Stops the server, ending hanging requests and open sockets. */
  close(): Promise<void>;
}

function lastUserText(req: FakeChatRequest): string {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i];
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content
        .map((p: unknown) => (typeof p === 'object' && p !== null && 'text' in p ? String(p.text) : ''))
        .join('');
    }
  }
  return '';
}

const echo: FakeHandler = (req) => ({ text: `Echo: ${lastUserText(req)}` });

// Splits text into `n` roughly equal pieces (by code point, so no surrogate pair is cut).
function split(text: string, n: number): string[] {
  const chars = Array.from(text);
  const size = Math.max(1, Math.ceil(chars.length / n));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function openAIError(status: number, message: string): unknown {
  return { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code: null } };
}

/** Starts a fake OpenAI-compatible server on 127.0.0.1 at a random port. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const handler = options.handler ?? echo;
  const models = options.models ?? ['fake-model'];
  const chunkDelayMs = options.chunkDelayMs ?? 0;
  const maxRecorded = options.maxRecorded ?? 10_000;
  const queue: Array<FakeReply | FakeHandler> = [];
  const requests: FakeChatRequest[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const closing = new AbortController();
  let aborted = 0;
  let seq = 0;

  async function chat(req: IncomingMessage, res: ServerResponse, gone: AbortSignal): Promise<void> {
    let body: FakeChatRequest;
    try {
      body = JSON.parse(await readBody(req)) as FakeChatRequest;
    } catch {
      sendJson(res, 400, openAIError(400, 'request body is not valid JSON'));
      return;
    }
    if (typeof body !== 'object' || body === null || !Array.isArray(body.messages)) {
      sendJson(res, 400, openAIError(400, "'messages' is a required array"));
      return;
    }
    if (maxRecorded > 0) {
      if (requests.length >= maxRecorded) {
        requests.shift();
        headers.shift();
      }
      requests.push(body);
      headers.push(req.headers);
    }
    const next = queue.shift() ?? handler;
    let reply = typeof next === 'function' ? await next(body) : next;
    while ('delayMs' in reply) {
      await sleep(reply.delayMs, gone);
      if (gone.aborted) return;
      reply = reply.then;
    }
    if (gone.aborted) return;
    if ('hang' in reply) {
      // Never answers: the request ends only when the client (or close()) drops the socket.
      await new Promise<void>((resolve) => gone.addEventListener('abort', () => resolve()));
      return;
    }
    if ('errorMidStream' in reply && body.stream !== true) {
      sendJson(res, 500, openAIError(500, reply.errorMidStream));
      return;
    }
    if ('status' in reply) {
      sendJson(
        res,
        reply.status,
        reply.body ?? openAIError(reply.status, `fake error ${reply.status}`),
        reply.headers,
      );
      return;
    }
    const id = `chatcmpl-fake-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const text = 'text' in reply ? (reply.text ?? '') : '';
    const toolCalls = 'toolCalls' in reply ? reply.toolCalls : [];
    const calls = toolCalls.map((c, i) => ({
      id: c.id ?? `call_${seq}_${i}`,
      name: c.name,
      args: JSON.stringify(c.arguments),
    }));
    const completionChars = text.length + calls.reduce((n, c) => n + c.name.length + c.args.length, 0);
    const given = 'usage' in reply ? reply.usage : undefined;
    const promptTokens = given?.prompt_tokens ?? Math.ceil(JSON.stringify(body.messages).length / 4);
    const completionTokens = given?.completion_tokens ?? Math.ceil(completionChars / 4);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const finishReason = calls.length > 0 ? 'tool_calls' : 'stop';
    const drop = 'dropMidStream' in reply;
    const inBand = 'errorMidStream' in reply ? reply.errorMidStream : undefined;

    if (body.stream !== true) {
      const message = {
        role: 'assistant',
        content: calls.length > 0 && text === '' ? null : text,
        ...(calls.length > 0
          ? {
              tool_calls: calls.map((c) => ({
                id: c.id,
                type: 'function',
                function: { name: c.name, arguments: c.args },
              })),
            }
          : {}),
      };
      const json = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        usage,
      });
      if (drop) {
        // Promise a full body, send half of it, then cut the connection.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(json.length) });
        res.write(json.slice(0, json.length >> 1), () => res.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(json);
      return;
    }

    const withUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: unknown, finish: string | null = null): string =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        // OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
        ...(withUsage ? { usage: null } : {}),
      })}\n\n`;
    const shown = (drop || inBand !== undefined) && text === '' ? 'This reply will be cut short' : text;
    // Like OpenAI: the role arrives with empty content, or with `content: null` and the first
    // tool call when the reply is tool calls only.
    const lines: string[] =
      shown !== '' || calls.length === 0 ? [chunk({ role: 'assistant', content: '' })] : [];
    for (const piece of split(shown, 4)) lines.push(chunk({ content: piece }));
    calls.forEach((c, index) => {
      const head = { index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } };
      lines.push(
        chunk(
          lines.length === 0
            ? { role: 'assistant', content: null, tool_calls: [head] }
            : { tool_calls: [head] },
        ),
      );
      for (const piece of split(c.args, 3))
        lines.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });
    lines.push(chunk({}, finishReason));
    if (withUsage) {
      lines.push(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [], usage })}\n\n`,
      );
    }
    lines.push('data: [DONE]\n\n');

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    // A dropped stream gets its opening chunks (role and some text), then the socket dies; one that
    // fails in band gets them, then the error and the end.
    if (inBand !== undefined)
      lines.splice(3, Infinity, `data: ${JSON.stringify(openAIError(500, inBand))}\n\n`, 'data: [DONE]\n\n');
    const sendCount = drop ? 3 : lines.length;
    for (let i = 0; i < sendCount; i++) {
      if (gone.aborted) return;
      if (chunkDelayMs > 0 && i > 0) await sleep(chunkDelayMs, gone);
      if (gone.aborted) return;
      res.write(lines[i]);
    }
    if (drop) {
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      res.destroy();
      return;
    }
    res.end();
  }

  const server = createServer((req, res) => {
    // One signal per request: set when the client goes away (or the server closes) before the end.
    const gone = new AbortController();
    const onClosing = (): void => gone.abort();
    closing.signal.addEventListener('abort', onClosing);
    res.on('close', () => {
      closing.signal.removeEventListener('abort', onClosing);
      if (!res.writableFinished) {
        aborted++;
        gone.abort();
      }
    });
    const path = (req.url ?? '/').split('?')[0];
    let work: Promise<void>;
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      work = chat(req, res, gone.signal);
    } else if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: models.map((m) => ({ id: m, object: 'model', created: 0, owned_by: 'fake-openai' })),
      });
      return;
    } else {
      sendJson(res, 404, openAIError(404, `no route ${req.method ?? ''} ${path ?? ''}`));
      return;
    }
    work.catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, openAIError(500, `fake server failed: ${String(err)}`));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    headers,
    get aborted() {
      return aborted;
    },
    script(...replies) {
      queue.push(...replies);
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
