/**
 * Which failures are an agent's own, and so count towards its recovery. Everything else is
 * someone else's: a refusal (quota, budget, rate limit, a busy thread, bad input, the pool full
 * or closing), a cancel or interrupt, a provider outage the model breaker, retries and fallbacks
 * already deal with, or the store or Redis being away. Restarting an agent for those would heal
 * nothing and hide the real cause.
 */
import { isAgentPoolError } from '../core/errors.ts';

/**
 * Codes of a run that started on an instance and failed for the agent's own reasons: its tools
 * fail, time out, are missing or are called with input their schema refuses; it loops to
 * `maxSteps`; something unexpected was thrown while it ran. `MODEL_CALL_FAILED` counts only when
 * the provider refused the request itself (see {@link isRequestRefused}).
 */
export const COUNTED_RUN_CODES: ReadonlySet<string> = new Set([
  'TOOL_FAILED',
  'TOOL_TIMEOUT',
  'TOOL_NOT_FOUND',
  'TOOL_INPUT_INVALID',
  'MAX_STEPS_REACHED',
  'INTERNAL_ERROR',
]);

/**
 * Codes of a failed activation that are not the agent's: the store or Redis being away, the pool
 * closing. Any other activation failure (its model or provider unknown, a tool module missing or
 * broken, two tools of one name) counts.
 */
export const IGNORED_ACTIVATION_CODES: ReadonlySet<string> = new Set([
  'STORE_FAILED',
  'STORE_UNAVAILABLE',
  'COORDINATION_UNAVAILABLE',
  'POOL_CLOSED',
  'SHUTTING_DOWN',
  'AGENT_NOT_FOUND',
  'VERSION_NOT_FOUND',
]);

/** What of a finished run decides whether it counts (a RunRecord fits). */
export interface FinishedRun {
  readonly status: string;
  /** Null when the run never got an instance (refused, or its activation failed: counted there). */
  readonly startedAt: number | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** True when a finished run is a failure of its agent's own (see the file's header). */
export function isAgentRunFailure(run: FinishedRun): boolean {
  if (run.status !== 'failed' || run.startedAt === null || run.error === null) return false;
  const { code, message } = run.error;
  if (COUNTED_RUN_CODES.has(code)) return true;
  return code === 'MODEL_CALL_FAILED' && isRequestRefused(message);
}

/** True when a failed activation is the agent's own failure. */
export function isAgentActivationFailure(err: unknown): boolean {
  return !isAgentPoolError(err) || !IGNORED_ACTIVATION_CODES.has(err.code);
}

// A run's record keeps the code and message of its error, not its details; the model guard and
// the runner write the provider's status into the message as "with HTTP <status>".
const HTTP_STATUS = / with HTTP (\d{3})\b/;

/**
 * True when the provider answered the request with a 4xx other than 408 (timeout) and 429
 * (throttling): the request as the agent builds it (its parameters, tools, prompt) is refused, and
 * would be on every retry. 5xx, timeouts and connection errors are the provider's sickness: the
 * breaker counts those.
 */
export function isRequestRefused(message: string): boolean {
  const match = HTTP_STATUS.exec(message);
  if (match === null) return false;
  const status = Number(match[1]);
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}
