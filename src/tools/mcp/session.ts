/**
 * One MCP server as one identity sees it: the session (an SDK `Client` over Streamable HTTP or
 * stdio), opened lazily and shared by every agent, run and instance of that identity; its cached
 * tool list; its breaker. A session the server expired (HTTP 404 on its session id) is opened again
 * transparently, once per call; the tool list is refreshed on `notifications/tools/list_changed`,
 * when a session opens again, and after its TTL, in the background: a call never waits for it.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type CallToolResult,
  type Tool as ListedTool,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Clock } from '../../core/clock.ts';
import type { AgentPoolError } from '../../core/errors.ts';
import { McpBreaker, type McpBreakerState } from './breaker.ts';
import type { McpConnectionSpec } from './declarations.ts';
import { classifyMcpFailure, isExpiredSession, type McpFailureContext, mcpUnavailable } from './failures.ts';
import type { ResolvedMcpOptions } from './mcp-options.ts';

export type { ListedTool };

/** A server's tools as last listed, with a version that changes when the list does. */
export interface ToolList {
  readonly tools: readonly ListedTool[];
  readonly version: number;
  readonly fetchedAt: number;
}

/** Figures of one session, kept across its reopenings. */
export interface McpSessionCounters {
  calls: number;
  errors: number;
  timeouts: number;
  opens: number;
  reinits: number;
  listHits: number;
  listRefreshes: number;
}

/** What a session reports to its owner (metrics, events, logs). */
export interface McpSessionObserver {
  opened(session: McpSession, reopened: boolean): void;
  closed(session: McpSession, reason: 'idle' | 'expired' | 'failed' | 'closed'): void;
  toolsChanged(session: McpSession, count: number): void;
  breakerChanged(session: McpSession, state: McpBreakerState): void;
  called(session: McpSession, seconds: number, outcome: 'ok' | 'error' | 'timeout' | 'unavailable'): void;
  /** A background refresh failed (the cached list stays). */
  refreshFailed(session: McpSession, err: unknown): void;
}

/** What a session is built from. */
export interface McpSessionDeps {
  readonly key: string;
  readonly project: string;
  readonly server: string;
  readonly spec: McpConnectionSpec;
  /** The declaration's call timeout, or `tools.mcp.callTimeoutMs`. */
  readonly callTimeoutMs: number;
  readonly options: ResolvedMcpOptions;
  readonly clock: Clock;
  readonly random: () => number;
  readonly observer: McpSessionObserver;
}

const CLIENT_INFO = { name: 'agentpool', version: '1' };

/** One server session and its tool list, for one project and set of credentials. */
export class McpSession {
  readonly key: string;
  readonly project: string;
  readonly server: string;
  readonly breaker: McpBreaker;
  readonly counters: McpSessionCounters = {
    calls: 0,
    errors: 0,
    timeouts: 0,
    opens: 0,
    reinits: 0,
    listHits: 0,
    listRefreshes: 0,
  };
  readonly #deps: McpSessionDeps;
  readonly #failureContext: McpFailureContext;
  #client: Client | undefined;
  #opening: Promise<Client> | undefined;
  #list: ToolList | undefined;
  #refreshing: Promise<ToolList> | undefined;
  #inFlight = 0;
  #lastUsedAt: number;
  #closed = false;

  constructor(deps: McpSessionDeps) {
    this.#deps = deps;
    this.key = deps.key;
    this.project = deps.project;
    this.server = deps.server;
    this.#lastUsedAt = deps.clock.now();
    this.#failureContext = { server: deps.server, project: deps.project };
    this.breaker = new McpBreaker({
      threshold: deps.options.breakerThreshold,
      backoffInitialMs: deps.options.backoffInitialMs,
      backoffMaxMs: deps.options.backoffMaxMs,
      clock: deps.clock,
      random: deps.random,
      onChange: (state) => deps.observer.breakerChanged(this, state),
    });
  }

  /** True while a session to the server is open. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** True once closed for good (the pool closed, or the session was evicted or forgotten). */
  get retired(): boolean {
    return this.#closed;
  }

  get lastUsedAt(): number {
    return this.#lastUsedAt;
  }

  /** Calls in flight (an idle session has none). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** How many tools the cached list has (null before a first listing); no refresh, no counting. */
  cachedToolCount(): number | null {
    return this.#list?.tools.length ?? null;
  }

  /**
   * The cached tool list, at once; starts a background refresh when there is none or it is past
   * its TTL (unless the breaker is open). Undefined until a first listing succeeded.
   */
  cachedTools(): ToolList | undefined {
    const list = this.#list;
    if (list === undefined || this.#deps.clock.now() - list.fetchedAt >= this.#deps.options.listTtlMs) {
      this.#refreshInBackground();
    }
    if (list !== undefined) this.counters.listHits++;
    return list;
  }

  /** The tool list: the cached one at once, else listed now (at activation); `MCP_UNAVAILABLE` when it cannot be. */
  async tools(): Promise<ToolList> {
    const cached = this.cachedTools();
    if (cached !== undefined) return cached;
    // cachedTools() may just have started the listing, as the breaker's trial: join it (a second
    // admit would be refused while the trial runs).
    if (this.#refreshing !== undefined) return this.#refreshing;
    if (!this.breaker.admit()) throw this.#unavailable('its breaker is open');
    return this.#refresh();
  }

  /**
   * Calls a tool; `signal` is the run's (and runTool's timeout): aborting it cancels the request on
   * the server. Throws `MCP_UNAVAILABLE` when the server cannot be reached, is hanging or its
   * breaker is open; `TOOL_FAILED` when the tool answered with an error.
   */
  async call(name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<CallToolResult> {
    this.counters.calls++;
    if (!this.breaker.admit()) {
      this.counters.errors++;
      this.#deps.observer.called(this, 0, 'unavailable');
      throw this.#unavailable(
        `its breaker is open (next try in ${Math.ceil(this.breaker.retryInMs() / 1000)} s)`,
      );
    }
    const started = performance.now();
    this.#inFlight++;
    this.#lastUsedAt = this.#deps.clock.now();
    try {
      const result = await this.#callOnce(name, args, signal, true);
      this.breaker.success();
      this.#deps.observer.called(this, (performance.now() - started) / 1000, result.isError ? 'error' : 'ok');
      if (result.isError === true) this.counters.errors++;
      return result as CallToolResult;
    } catch (err) {
      const seconds = (performance.now() - started) / 1000;
      this.counters.errors++;
      throw this.#failed(err, signal, seconds);
    } finally {
      this.#inFlight--;
      this.#lastUsedAt = this.#deps.clock.now();
    }
  }

  /** Closes the session if it has been idle at least `idleTimeoutMs`; true when it did. */
  closeIfIdle(): boolean {
    if (this.#client === undefined || this.#inFlight > 0) return false;
    if (this.#deps.clock.now() - this.#lastUsedAt < this.#deps.options.idleTimeoutMs) return false;
    this.#drop('idle');
    return true;
  }

  /** Closes the session for good (a stdio server's process ends). */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    this.#opening = undefined;
    if (client !== undefined) {
      this.#deps.observer.closed(this, 'closed');
      await client.close().catch(() => undefined);
    }
  }

  /**
   * Sends the call on the open session (opening one if needed); a 404 on the session's id (the
   * server restarted or expired it) opens a new session and sends it again, once. No async frame
   * of its own: on an open session this is the SDK's promise, one less turn per call.
   */
  #callOnce(
    name: string,
    args: Record<string, unknown>,
    signal: AbortSignal,
    mayReinit: boolean,
  ): Promise<CallToolResult> {
    const options = { signal, timeout: this.#deps.callTimeoutMs };
    const send = (client: Client): Promise<CallToolResult> => {
      const sent = client.callTool({ name, arguments: args }, undefined, options) as Promise<CallToolResult>;
      if (!mayReinit) return sent;
      return sent.catch((err: unknown) => {
        if (!isExpiredSession(err) || signal.aborted) throw err;
        this.counters.reinits++;
        this.#drop('expired', client); // only if no concurrent call replaced it already
        return this.#callOnce(name, args, signal, false);
      });
    };
    const client = this.#client;
    return client !== undefined ? send(client) : this.#session().then(send);
  }

  /** The open session, or one opened now (one opening shared by every concurrent caller). */
  #session(): Promise<Client> {
    if (this.#closed) return Promise.reject(this.#unavailable('the pool is closing'));
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<Client> {
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      if (this.#client === client) this.#refreshInBackground(true);
    });
    client.onclose = () => {
      // The transport closed under us (a stdio server exited): the next call opens a new session.
      if (this.#client === client) {
        this.#client = undefined;
        this.#deps.observer.closed(this, 'failed');
      }
    };
    const spec = this.#deps.spec;
    const transport =
      spec.transport === 'http'
        ? new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers: spec.headers } })
        : new StdioClientTransport({
            command: spec.command,
            args: [...spec.args],
            env: { ...getDefaultEnvironment(), ...spec.env },
            ...(spec.cwd !== undefined && { cwd: spec.cwd }),
            stderr: 'ignore',
          });
    try {
      await client.connect(transport, { timeout: this.#deps.options.connectTimeoutMs });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
    if (this.#closed) {
      await client.close().catch(() => undefined);
      throw this.#unavailable('the pool is closing');
    }
    const reopened = this.counters.opens > 0;
    this.counters.opens++;
    this.#client = client;
    this.#deps.observer.opened(this, reopened);
    // A new session may serve a new list (the server restarted, or changed while we were away).
    if (reopened) this.#refreshInBackground(true);
    return client;
  }

  /** Drops the open session (`client`, when given, only if it is still the open one). */
  #drop(reason: 'idle' | 'expired' | 'failed', client = this.#client): void {
    if (client === undefined || this.#client !== client) return;
    this.#client = undefined;
    this.#deps.observer.closed(this, reason);
    void client.close().catch(() => undefined);
  }

  /**
   * Lists the tools again unless a listing is under way; unless `force`d (list_changed, a new
   * session), only while the breaker lets calls through: an open breaker's trial may be this.
   */
  #refreshInBackground(force = false): void {
    if (this.#refreshing !== undefined || this.#closed) return;
    if (!force && this.breaker.state.value !== 'closed' && !this.breaker.admit()) return;
    this.#refresh().catch((err: unknown) => this.#deps.observer.refreshFailed(this, err));
  }

  /** Lists the tools now (every page); one listing at a time. */
  #refresh(): Promise<ToolList> {
    this.#refreshing ??= this.#list_().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #list_(): Promise<ToolList> {
    try {
      const tools = await this.#listOnce(true);
      this.breaker.success();
      const previous = this.#list;
      const same = previous !== undefined && JSON.stringify(previous.tools) === JSON.stringify(tools);
      const list: ToolList = {
        tools: same ? previous.tools : tools,
        version: same ? previous.version : (previous?.version ?? 0) + 1,
        fetchedAt: this.#deps.clock.now(),
      };
      this.#list = list;
      if (!same) this.#deps.observer.toolsChanged(this, tools.length);
      return list;
    } catch (err) {
      throw this.#failed(err, undefined, undefined);
    }
  }

  async #listOnce(mayReinit: boolean): Promise<ListedTool[]> {
    const client = await this.#session();
    this.counters.listRefreshes++;
    try {
      const tools: ListedTool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor }, {
          timeout: this.#deps.options.connectTimeoutMs,
        });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return tools;
    } catch (err) {
      if (mayReinit && isExpiredSession(err)) {
        this.counters.reinits++;
        this.#drop('expired', client);
        return this.#listOnce(false);
      }
      throw err;
    }
  }

  /** Applies what a failure means (failures.ts) to the counters, breaker and session; returns its error. */
  #failed(err: unknown, signal: AbortSignal | undefined, seconds: number | undefined): AgentPoolError {
    const failure = classifyMcpFailure(err, signal, this.#failureContext);
    if (failure.timedOut) this.counters.timeouts++;
    if (failure.breaker === 'failure') this.breaker.failure();
    else if (failure.breaker === 'success') this.breaker.success();
    if (failure.drop) this.#drop('failed');
    if (seconds !== undefined) this.#deps.observer.called(this, seconds, failure.outcome);
    return failure.error;
  }

  #unavailable(why: string): AgentPoolError {
    return mcpUnavailable(this.#failureContext, why);
  }
}
