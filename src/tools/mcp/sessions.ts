/**
 * The session pool of MCP servers: one {@link McpSession} per server and identity (project plus
 * resolved credentials, hashed), opened lazily and shared by every agent, run and instance of that
 * identity, bounded by `tools.mcp.maxSessions` (the least recently used idle session goes first),
 * idle sessions closed by a sweep. It reports to the pool's bus (`mcp.*` events), its logger and
 * its metrics, and keeps per-server figures for `GET /v1/pool/stats`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import type { Logger } from '../../core/logger.ts';
import { LabelledHistogram } from '../../labelled-histogram.ts';
import type { EventSink } from '../../events/bus.ts';
import type { McpBreakerState } from './breaker.ts';
import type { McpServerDeclaration } from '../../store/mcp-server-ports.ts';
import { identityKey, resolveConnection } from './declarations.ts';
import type { ResolvedMcpOptions } from './mcp-options.ts';
import { McpSession, type McpSessionCounters, type McpSessionObserver } from './session.ts';

/** Events of MCP servers on the pool's bus. */
export type McpEvent =
  | { type: 'mcp.session_opened'; at: number; project: string; server: string; reopened: boolean }
  | {
      type: 'mcp.session_closed';
      at: number;
      project: string;
      server: string;
      reason: 'idle' | 'expired' | 'failed' | 'closed';
    }
  | { type: 'mcp.tools_changed'; at: number; project: string; server: string; tools: number }
  | { type: 'mcp.breaker_opened'; at: number; project: string; server: string; retryAt: number }
  | { type: 'mcp.breaker_half_opened'; at: number; project: string; server: string }
  | { type: 'mcp.breaker_closed'; at: number; project: string; server: string };

/** One server's figures as `GET /v1/pool/stats` shows them (its sessions' summed). */
export interface McpServerStats extends McpSessionCounters {
  readonly project: string;
  readonly server: string;
  /** Sessions of this server (one per identity) and how many are open now. */
  readonly sessions: number;
  readonly open: number;
  /** The worst breaker state of its sessions. */
  readonly breaker: McpBreakerState['value'];
  /** Tools in the cached list (the largest of its sessions'), null before a first listing. */
  readonly tools: number | null;
}

/** The `mcp` section of the pool's stats. */
export interface McpStats {
  readonly sessions: number;
  readonly openSessions: number;
  readonly servers: McpServerStats[];
}

/** What the session pool is built from. */
export interface McpSessionsDeps {
  readonly options: ResolvedMcpOptions;
  readonly clock: Clock;
  readonly bus: EventSink<McpEvent>;
  readonly log: Logger;
  /** The pool's metrics registry. @default none */
  readonly registry?: Registry;
  /** The jitter source. @default Math.random */
  readonly random?: () => number;
  /** Where `{ env }` references are read. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

const BREAKER_RANK = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Every MCP session of a pool. */
export class McpSessions {
  readonly options: ResolvedMcpOptions;
  readonly #deps: McpSessionsDeps;
  /** In least-recently-used order (a use moves a session to the end). */
  readonly #sessions = new Map<string, McpSession>();
  readonly #observer: McpSessionObserver;
  readonly #latency: LabelledHistogram<'project' | 'server' | 'outcome'> | undefined;
  #sweep: TimerHandle | undefined;
  #closed = false;

  constructor(deps: McpSessionsDeps) {
    this.#deps = deps;
    this.options = deps.options;
    const { bus, clock, log } = deps;
    if (deps.registry !== undefined) {
      this.#latency = registerMcpMetrics(deps.registry, () => this.stats());
    }
    const at = (): number => clock.now();
    this.#observer = {
      opened: (s, reopened) => {
        log.debug({ project: s.project, server: s.server, reopened }, 'MCP session opened');
        bus.emit({ type: 'mcp.session_opened', at: at(), project: s.project, server: s.server, reopened });
      },
      closed: (s, reason) => {
        log.debug({ project: s.project, server: s.server, reason }, 'MCP session closed');
        bus.emit({ type: 'mcp.session_closed', at: at(), project: s.project, server: s.server, reason });
      },
      toolsChanged: (s, tools) =>
        bus.emit({ type: 'mcp.tools_changed', at: at(), project: s.project, server: s.server, tools }),
      breakerChanged: (s, state) => {
        const base = { at: at(), project: s.project, server: s.server };
        if (state.value === 'open') {
          log.warn(
            { project: s.project, server: s.server, retryAt: state.retryAt },
            'MCP server breaker opened',
          );
          bus.emit({ type: 'mcp.breaker_opened', ...base, retryAt: state.retryAt });
        } else if (state.value === 'half-open') bus.emit({ type: 'mcp.breaker_half_opened', ...base });
        else {
          log.info({ project: s.project, server: s.server }, 'MCP server breaker closed');
          bus.emit({ type: 'mcp.breaker_closed', ...base });
        }
      },
      called: (s, seconds, outcome) =>
        this.#latency?.observe({ project: s.project, server: s.server, outcome }, seconds),
      refreshFailed: (s, err) =>
        log.debug({ project: s.project, server: s.server, err }, 'MCP tool list refresh failed'),
    };
    this.#scheduleSweep();
  }

  /**
   * The session of `server` as `project` with this declaration's credentials (read from the
   * environment now), created if needed; `MCP_UNAVAILABLE` when a referenced variable is unset.
   */
  session(project: string, server: string, declaration: McpServerDeclaration): McpSession {
    const spec = resolveConnection(server, declaration, this.#deps.env);
    const key = identityKey(project, server, spec);
    let session = this.#sessions.get(key);
    if (session !== undefined) {
      this.#sessions.delete(key);
      this.#sessions.set(key, session);
      return session;
    }
    session = new McpSession({
      key,
      project,
      server,
      spec,
      callTimeoutMs: declaration.timeoutMs ?? this.options.callTimeoutMs,
      options: this.options,
      clock: this.#deps.clock,
      random: this.#deps.random ?? Math.random,
      observer: this.#observer,
    });
    this.#sessions.set(key, session);
    this.#trim();
    return session;
  }

  /** Closes sessions idle past `idleTimeoutMs` (also run on a timer); returns how many closed. */
  sweepIdle(): number {
    let closed = 0;
    for (const session of this.#sessions.values()) if (session.closeIfIdle()) closed++;
    this.#trim(); // sessions kept over the bound while they were busy
    return closed;
  }

  /** Closes and forgets the sessions of a project's server (its declaration changed or was deleted), or of every server of the project. */
  async forget(project: string, server?: string): Promise<void> {
    const gone: McpSession[] = [];
    for (const [key, session] of this.#sessions) {
      if (session.project === project && (server === undefined || session.server === server)) {
        this.#sessions.delete(key);
        gone.push(session);
      }
    }
    await Promise.all(gone.map((s) => s.close()));
  }

  /** Per-server figures. */
  stats(): McpStats {
    const byServer = new Map<string, McpServerStats & McpSessionCounters>();
    let open = 0;
    for (const s of this.#sessions.values()) {
      if (s.connected) open++;
      const id = `${s.project}\u0000${s.server}`;
      const prev = byServer.get(id);
      const tools = s.cachedToolCount();
      const breaker = s.breaker.state.value;
      const c = s.counters;
      byServer.set(id, {
        project: s.project,
        server: s.server,
        sessions: (prev?.sessions ?? 0) + 1,
        open: (prev?.open ?? 0) + (s.connected ? 1 : 0),
        breaker:
          prev === undefined || BREAKER_RANK[breaker] > BREAKER_RANK[prev.breaker] ? breaker : prev.breaker,
        tools: tools === null ? (prev?.tools ?? null) : Math.max(tools, prev?.tools ?? 0),
        calls: (prev?.calls ?? 0) + c.calls,
        errors: (prev?.errors ?? 0) + c.errors,
        timeouts: (prev?.timeouts ?? 0) + c.timeouts,
        opens: (prev?.opens ?? 0) + c.opens,
        reinits: (prev?.reinits ?? 0) + c.reinits,
        listHits: (prev?.listHits ?? 0) + c.listHits,
        listRefreshes: (prev?.listRefreshes ?? 0) + c.listRefreshes,
      });
    }
    return { sessions: this.#sessions.size, openSessions: open, servers: [...byServer.values()] };
  }

  /** Closes every session (stdio servers' processes end). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#sweep?.cancel();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map((s) => s.close()));
  }

  /**
   * Back to `maxSessions`: the least recently used sessions without calls in flight close. Busy
   * ones are kept (their calls would fail), so the map may stay over until they finish: the next
   * session opened, or the idle sweep, trims again.
   */
  #trim(): void {
    for (const [key, session] of this.#sessions) {
      if (this.#sessions.size <= this.options.maxSessions) return;
      if (session.inFlight > 0) continue;
      this.#sessions.delete(key);
      void session.close();
    }
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    const every = Math.max(1000, Math.floor(this.options.idleTimeoutMs / 2));
    this.#sweep = this.#deps.clock.setTimeout(() => {
      this.sweepIdle();
      this.#scheduleSweep();
    }, every);
  }
}

/** Registers the MCP series on the pool's registry; counters are read from `stats` at scrape time. */
function registerMcpMetrics(
  registry: Registry,
  stats: () => McpStats,
): LabelledHistogram<'project' | 'server' | 'outcome'> {
  const registers = [registry];
  const counter = (name: string, help: string, read: (s: McpServerStats) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['project', 'server'],
      registers,
      collect() {
        this.reset();
        for (const s of stats().servers) this.inc({ project: s.project, server: s.server }, read(s));
      },
    });
  };
  counter('agentpool_mcp_calls_total', 'MCP tool calls, by project and server.', (s) => s.calls);
  counter(
    'agentpool_mcp_errors_total',
    'MCP tool calls that failed (unavailable, timed out, or the tool reported an error).',
    (s) => s.errors,
  );
  counter('agentpool_mcp_timeouts_total', 'MCP tool calls that timed out.', (s) => s.timeouts);
  counter(
    'agentpool_mcp_session_opens_total',
    'MCP sessions opened (initialize), by project and server.',
    (s) => s.opens,
  );
  counter(
    'agentpool_mcp_session_reinits_total',
    'MCP sessions opened again after the server expired them (HTTP 404).',
    (s) => s.reinits,
  );
  counter('agentpool_mcp_tool_list_hits_total', 'Tool lists served from the cache.', (s) => s.listHits);
  counter(
    'agentpool_mcp_tool_list_refreshes_total',
    'tools/list requests made (first listing, list_changed, reconnect, TTL).',
    (s) => s.listRefreshes,
  );
  new Gauge({
    name: 'agentpool_mcp_breaker_state',
    help: "Each MCP server's breaker: 0 closed, 1 half-open, 2 open.",
    labelNames: ['project', 'server'],
    registers,
    collect() {
      this.reset();
      for (const s of stats().servers)
        this.set({ project: s.project, server: s.server }, BREAKER_RANK[s.breaker]);
    },
  });
  new Gauge({
    name: 'agentpool_mcp_sessions_open',
    help: 'MCP sessions open now.',
    registers,
    collect() {
      this.set(stats().openSessions);
    },
  });
  // Observed on every call: a series found by Map lookups (prom-client's hashes its labels each time).
  const latency = new LabelledHistogram({
    name: 'agentpool_mcp_call_seconds',
    help: 'Latency of MCP tool calls, by project, server and outcome (ok, error, timeout, unavailable).',
    labelNames: ['project', 'server', 'outcome'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
  });
  registry.registerMetric(latency as never);
  return latency;
}
