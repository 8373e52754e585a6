/**
 * What the pool writes to its log, in one place rather than sprinkled through the layers: one
 * line per failed run (from the run observer), per breaker change and per fallback (from the
 * event bus), per failed activation. The layers stay free of logging; the composition root wires
 * this file between them and the logger.
 *
 * Only rare events are subscribed to: listening to `instance.state_changed` would make the pool
 * build an event on every acquire and release, which the warm path must not pay for.
 */
import type { AgentPoolEvent } from './agent-pool.ts';
import { isAgentPoolError } from './core/errors.ts';
import type { Logger } from './core/logger.ts';
import type { EventBus } from './events/bus.ts';
import type { RunObserver } from './run/observer.ts';
import type { RunRecord } from './store/ports.ts';

/** Failure codes after which someone must act (a bug, a store in trouble): `error`, not `warn`. */
const OPERATOR_CODES: ReadonlySet<string> = new Set(['INTERNAL_ERROR', 'STORE_FAILED']);

/**
 * The run observer `observer` plus a log line per finished run: `warn` for a failed or
 * interrupted run (the provider, a tool, a limit), `error` for INTERNAL_ERROR and STORE_FAILED,
 * `debug` for succeeded and cancelled runs. The line has the run's id, project, agent, model,
 * code, message and duration; never its input or output.
 */
export function loggingRunObserver(observer: RunObserver, logger: Logger): RunObserver {
  return {
    modelCall: (model, seconds, ok) => observer.modelCall(model, seconds, ok),
    threadBusy: () => observer.threadBusy(),
    runFinished: (run) => {
      observer.runFinished(run);
      logRun(logger, run);
    },
  };
}

function logRun(logger: Logger, run: RunRecord): void {
  const failed = run.status === 'failed' || run.status === 'interrupted';
  const level = !failed ? 'debug' : OPERATOR_CODES.has(run.error?.code ?? '') ? 'error' : 'warn';
  if (!logger.isLevelEnabled(level)) return;
  const began = run.startedAt ?? run.createdAt;
  const fields = {
    runId: run.id,
    project: run.project,
    agent: run.agentName,
    version: run.agentVersion,
    model: run.model,
    threadId: run.threadId,
    status: run.status,
    steps: run.steps,
    durationMs: run.finishedAt === null ? null : run.finishedAt - began,
    ...(run.error !== null && { code: run.error.code, error: run.error.message }),
  };
  logger[level](fields, `run ${run.status}`);
}

/**
 * Subscribes `logger` to the breaker and fallback events of `bus`: a breaker opening is `warn`
 * (calls to that model fail fast), half-open and closed are `info`, a fallback is `warn`.
 * Returns the function that unsubscribes.
 */
export function logModelEvents(bus: EventBus<AgentPoolEvent>, logger: Logger): () => void {
  const offs = [
    bus.on('breaker.opened', (e) =>
      logger.warn(
        { model: e.model, code: e.reason.code, reason: e.reason.message },
        'model breaker opened: calls to it fail fast until the cooldown passes',
      ),
    ),
    bus.on('breaker.half_opened', (e) =>
      logger.info({ model: e.model }, 'model breaker half-open: a trial call goes through'),
    ),
    bus.on('breaker.closed', (e) =>
      logger.info({ model: e.model }, 'model breaker closed: calls flow again'),
    ),
    bus.on('model.fallback', (e) =>
      logger.warn(
        {
          from: e.from,
          to: e.to,
          code: e.reason.code,
          reason: e.reason.message,
          project: e.project,
          agent: e.agent,
          runId: e.runId,
        },
        'model call fell back to the next model of the route',
      ),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** One `warn` line for an activation that failed (its model or tools could not be resolved). */
export function logActivationFailure(
  logger: Logger,
  agent: { project: string; name: string; activeVersion: number },
  err: unknown,
): void {
  logger.warn(
    {
      project: agent.project,
      agent: agent.name,
      version: agent.activeVersion,
      code: isAgentPoolError(err) ? err.code : 'ACTIVATION_FAILED',
      error: err instanceof Error ? err.message : String(err),
    },
    'activation failed',
  );
}

/**
 * Subscribes `logger` to the health monitor's events: the node getting worse is `warn` (`error`
 * when it starts shedding), getting better `info`; timeouts, stuck instances and a cache shrunk
 * under memory pressure `warn`. Returns the function that unsubscribes.
 */
export function logHealthEvents(bus: EventBus<AgentPoolEvent>, logger: Logger): () => void {
  const severity = { ok: 0, degraded: 1, overloaded: 2 } as const;
  const offs = [
    bus.on('pool.health.changed', (e) => {
      const fields = { from: e.from, to: e.to, checks: e.checks };
      if (severity[e.to] < severity[e.from]) logger.info(fields, `node health recovered: ${e.to}`);
      else if (e.to === 'overloaded') logger.error(fields, 'node overloaded: new runs are refused');
      else logger.warn(fields, `node health ${e.to}`);
    }),
    bus.on('instance.activation_timed_out', (e) =>
      logger.warn(
        { project: e.project, agent: e.agent, elapsedMs: e.elapsedMs, timeoutMs: e.timeoutMs },
        'activation timed out',
      ),
    ),
    bus.on('run.timed_out', (e) =>
      logger.warn(
        {
          runId: e.runId,
          project: e.project,
          agent: e.agent,
          elapsedMs: e.elapsedMs,
          timeoutMs: e.timeoutMs,
        },
        'run timed out: cancelled',
      ),
    ),
    bus.on('instance.stuck', (e) =>
      logger.warn(
        { project: e.project, agent: e.name, instanceId: e.instanceId, busyMs: e.busyMs, leases: e.leases },
        'instance stuck: busy for longer than stuckAfterMs',
      ),
    ),
    bus.on('pool.cache_shrunk', (e) =>
      logger.warn({ evicted: e.evicted, reason: e.reason }, 'activation cache shrunk under memory pressure'),
    ),
  ];
  return () => {
    for (const off of offs) off();
  };
}
