/**
 * The HTTP client of the CLI's client commands (`agents`, `run`, `stats`): JSON requests and
 * server-sent events over global `fetch` against a running `agentpool serve`. Error bodies
 * (`{ error: { code, message } }`) become `ApiError`s, and a server that cannot be reached becomes
 * one clear message instead of `fetch failed`.
 */

/** Where the client commands look for the server when neither `--url` nor the variable is set. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8787';
/** The environment variable naming the server. */
export const SERVER_URL_ENV = 'AGENTPOOL_URL';
/** Sent as `Authorization: Bearer …` when set (servers with API keys). */
export const API_KEY_ENV = 'AGENTPOOL_API_KEY';
/** How long a plain (non-streaming) request may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/** An error answer of the server, printed by `main.ts` as `error: <code>: <message>`. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;

  constructor(code: string, message: string, status: number, details?: unknown) {
    super(`${code}: ${message}`);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/**
 * The server's base URL: the `--url` flag, else `AGENTPOOL_URL`, else the default; a value that
 * is not an http(s) URL is an error naming where it came from.
 */
export function resolveServerUrl(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const fromEnv = env[SERVER_URL_ENV];
  const [raw, source] =
    flag !== undefined
      ? [flag, '--url']
      : fromEnv !== undefined && fromEnv !== ''
        ? [fromEnv, SERVER_URL_ENV]
        : [DEFAULT_SERVER_URL, 'the default'];
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${source} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${source} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return url.href.replace(/\/+$/, '');
}

/** One server-sent event: `data` is the joined `data:` lines. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Parses a server-sent event stream (text chunks, split anywhere) into events: fields per line,
 * an event per blank line, `data:` lines joined with `\n`, `:` comments ignored. An event left
 * unterminated when the stream ends is dropped, as the spec says.
 */
export async function* parseSse(chunks: AsyncIterable<string>): AsyncGenerator<SseMessage> {
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  for await (const chunk of chunks) {
    buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      // A lone `\r` at the end may be the first half of `\r\n`: wait for the next chunk.
      if (match === null || (match[0] === '\r' && match.index === buffer.length - 1)) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) yield { id, event: event === '' ? 'message' : event, data: data.join('\n') };
        data = [];
        event = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  }
}

/** Options of one request. */
export interface RequestOptions {
  /** Query parameters; an array repeats the parameter. */
  query?: Record<string, string | number | readonly string[] | undefined>;
  /** Sent as JSON. */
  body?: unknown;
}

/** A client of one agentpool server. */
export class AgentPoolClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;

  constructor(baseUrl: string, options: { apiKey?: string | undefined } = {}) {
    this.baseUrl = baseUrl;
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
  }

  /** The client the `--url` flag and the environment describe. */
  static from(
    flagUrl: string | undefined,
    env: Readonly<Record<string, string | undefined>>,
  ): AgentPoolClient {
    return new AgentPoolClient(resolveServerUrl(flagUrl, env), { apiKey: env[API_KEY_ENV] });
  }

  /** Sends one request; resolves with the JSON answer (undefined for 204). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const response = await this.#fetch(method, path, options, signal, 'application/json');
    if (response.status === 204) return undefined as T;
    try {
      return (await response.json()) as T;
    } catch (err) {
      throw this.#transportError(err, 'the answer was not JSON');
    }
  }

  /** Sends one request that answers with server-sent events and yields them as they arrive. */
  async *events(method: string, path: string, options: RequestOptions = {}): AsyncGenerator<SseMessage> {
    const response = await this.#fetch(method, path, options, undefined, 'text/event-stream');
    if (response.body === null) return;
    const text = response.body.pipeThrough(new TextDecoderStream());
    try {
      yield* parseSse(text);
    } catch (err) {
      throw this.#transportError(err, 'the event stream broke off');
    }
  }

  async #fetch(
    method: string,
    path: string,
    options: RequestOptions,
    signal: AbortSignal | undefined,
    accept: string,
  ): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      for (const v of typeof value === 'object' ? value : [value]) url.searchParams.append(key, String(v));
    }
    const headers: Record<string, string> = { accept };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
        ...(signal !== undefined && { signal }),
      });
    } catch (err) {
      throw this.#transportError(err);
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  /** `fetch failed` and friends, said in terms of the server. */
  #transportError(err: unknown, what?: string): Error {
    if (err instanceof Error && err.name === 'TimeoutError') {
      return new Error(`agentpool at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
    }
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
    if (what !== undefined) {
      return new Error(`${what} (agentpool at ${this.baseUrl}): ${cause ?? String(err)}`, { cause: err });
    }
    return new Error(
      `cannot reach agentpool at ${this.baseUrl}; is \`agentpool serve\` running?` +
        (cause !== undefined && cause !== '' ? ` (${cause})` : ''),
      { cause: err },
    );
  }
}

/** The `ApiError` of a non-2xx answer; a body that is not an error body keeps the status. */
async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    if (typeof body.error?.code === 'string') {
      const message = typeof body.error.message === 'string' ? body.error.message : response.statusText;
      return new ApiError(body.error.code, message, response.status, body.error.details);
    }
  } catch {
    // not JSON: fall through
  }
  const message = text.trim().slice(0, 200) || response.statusText || 'no body';
  return new ApiError(`HTTP_${response.status}`, message, response.status);
}
