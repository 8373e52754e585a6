/**
 * The HTTP client of the CLI's client commands (`agents`, `run`, `threads`, `runs`, `projects`,
 * `keys`, `usage`, `stats`): JSON requests and server-sent events over global `fetch` against a
 * running `agentpool serve`. Error bodies (`{ error: { code, message } }`) become `ApiError`s, a
 * refused key says which variable to set, and a server that cannot be reached becomes one clear
 * message instead of `fetch failed`.
 */

/** Where the client commands look for the server when neither `--url` nor the variable is set. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8787';
/** The environment variable naming the server. */
export const SERVER_URL_ENV = 'AGENTPOOL_URL';
/** Sent as `Authorization: Bearer …` when set (servers with API keys). */
export const API_KEY_ENV = 'AGENTPOOL_API_KEY';
/** The header with which the admin key acts in a project (`--project`). */
export const PROJECT_HEADER = 'agentpool-project';

/** What every client command takes: the server's URL and, for the admin, the project to act in. */
export interface ClientFlags {
  url?: string;
  /** Sent as the `agentpool-project` header: the project the admin key acts in. */
  project?: string;
}
/** How long a plain (non-streaming) request may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * An error answer of the server, printed by `main.ts` as `error: <code>: <message>`, then
 * `hint: <hint>` when the CLI knows what to do about it.
 */
export class ApiError extends Error {
  readonly code: string;
  /** The HTTP status; 0 for a run that failed after its stream started. */
  readonly status: number;
  readonly details: unknown;
  /** What to try next, printed on a line of its own. */
  readonly hint: string | undefined;
  /** The server's message, without the code. */
  readonly serverMessage: string;

  constructor(code: string, message: string, status: number, details?: unknown, hint?: string) {
    super(`${code}: ${message}`);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.details = details;
    this.hint = hint;
    this.serverMessage = message;
  }

  /** The same error with a hint (a command knows better than the client what the user can do). */
  withHint(hint: string): ApiError {
    return new ApiError(this.code, this.serverMessage, this.status, this.details, hint);
  }
}

/** The hint for a refused request, which depends on whether a key was sent. */
function authHint(status: number, keySent: boolean): string | undefined {
  if (status === 401) {
    return keySent
      ? `${API_KEY_ENV} holds a key this server does not know (revoked, or another server's)`
      : `set ${API_KEY_ENV} to an API key of this server (a project key, or the admin key)`;
  }
  if (status === 403) return `this needs the admin key: set ${API_KEY_ENV} to it`;
  return undefined;
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
  /** Extra request headers (`last-event-id` to resume an event stream). */
  headers?: Record<string, string>;
}

/** A client of one agentpool server. */
export class AgentPoolClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #project: string | undefined;

  constructor(baseUrl: string, options: { apiKey?: string | undefined; project?: string | undefined } = {}) {
    this.baseUrl = baseUrl;
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.#project = options.project;
  }

  /** The client the flags (`--url`, `--project`) and the environment describe. */
  static from(flags: ClientFlags, env: Readonly<Record<string, string | undefined>>): AgentPoolClient {
    return new AgentPoolClient(resolveServerUrl(flags.url, env), {
      apiKey: env[API_KEY_ENV],
      project: flags.project,
    });
  }

  /**
   * Every item of a paged listing (`{ data, nextCursor }`), following `nextCursor`; with `limit`,
   * only the first page of at most that many. `nextCursor` is the last page's.
   */
  async list<T>(
    path: string,
    query: RequestOptions['query'] = {},
    limit?: number,
  ): Promise<{ data: T[]; nextCursor: string | null }> {
    type Page = { data: T[]; nextCursor?: string | null };
    let page = await this.request<Page>('GET', path, { query: { ...query, limit } });
    const data = [...page.data];
    while (limit === undefined && typeof page.nextCursor === 'string') {
      page = await this.request<Page>('GET', path, { query: { ...query, cursor: page.nextCursor } });
      data.push(...page.data);
    }
    return { data, nextCursor: page.nextCursor ?? null };
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
    const headers: Record<string, string> = { ...options.headers, accept };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    if (this.#project !== undefined) headers[PROJECT_HEADER] = this.#project;
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
    if (!response.ok) {
      const error = await errorOf(response);
      const hint = authHint(response.status, this.#apiKey !== undefined);
      throw hint === undefined ? error : error.withHint(hint);
    }
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
