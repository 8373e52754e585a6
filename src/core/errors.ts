/**
 * The one error type of agentpool. Every failure a caller can act on carries a stable string
 * `code`, the HTTP `status` the server answers with, and structured `details`.
 * This file is the catalogue: a new code is added here and nowhere else.
 */

/** Every error code agentpool raises, with the HTTP status it maps to. */
export const ERROR_CODES = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  MODEL_NOT_FOUND: 400,
  PROVIDER_NOT_CONFIGURED: 400,
  NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  INSTANCE_NOT_FOUND: 404,
  THREAD_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  ROLLOUT_NOT_FOUND: 404,
  // A tool reference `mcp:<server>` naming a server the agent's project has not declared.
  MCP_SERVER_NOT_FOUND: 404,
  AGENT_EXISTS: 409,
  PROJECT_EXISTS: 409,
  PROJECT_NOT_FOUND: 404,
  PROJECT_NOT_EMPTY: 409,
  VERSION_CONFLICT: 409,
  AGENT_PAUSED: 409,
  INVALID_STATE_TRANSITION: 409,
  THREAD_BUSY: 409,
  RUN_NOT_ACTIVE: 409,
  ROLLOUT_IN_PROGRESS: 409,
  // A write by a run whose thread lease another run now holds (a stale fencing token).
  LEASE_LOST: 409,
  PAYLOAD_TOO_LARGE: 413,
  REQUEST_TIMEOUT: 408,
  HEADERS_TOO_LARGE: 431,
  QUOTA_EXCEEDED: 429,
  BUDGET_EXHAUSTED: 429,
  // Not 429: no wait makes a call whose worst case alone is more than a whole budget fit.
  RUN_EXCEEDS_BUDGET: 422,
  RATE_LIMITED: 429,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOOL_NOT_FOUND: 422,
  // An agent's `hooks` names a module or export that is not there, or not a function.
  HOOK_NOT_FOUND: 422,
  TOOL_INPUT_INVALID: 422,
  MAX_STEPS_REACHED: 422,
  ACTIVATION_FAILED: 500,
  INTERNAL_ERROR: 500,
  STORE_FAILED: 500,
  TOOL_FAILED: 500,
  RUN_CANCELLED: 499,
  RUN_INTERRUPTED: 500,
  MODEL_CALL_FAILED: 502,
  ACQUIRE_TIMEOUT: 503,
  POOL_SATURATED: 503,
  // A tier's instance or concurrent-run limit (pool.tiers.limits) is reached.
  TIER_SATURATED: 503,
  POOL_CLOSED: 503,
  SHUTTING_DOWN: 503,
  // The node sheds load (health monitor): new runs are refused, runs in flight finish.
  OVERLOADED: 503,
  MODEL_UNAVAILABLE: 503,
  // A shared dependency cannot be reached: PostgreSQL, and Redis in cluster mode.
  STORE_UNAVAILABLE: 503,
  COORDINATION_UNAVAILABLE: 503,
  MODEL_BUSY: 503,
  // An MCP server cannot be reached (down, hanging, breaker open): its tools' calls fail fast with it.
  MCP_UNAVAILABLE: 503,
  // Failure recovery marked the agent degraded: its runs are refused until a reset or the cooldown.
  AGENT_DEGRADED: 503,
  TOOL_TIMEOUT: 504,
  MODEL_TIMEOUT: 504,
  // The health monitor gave up on an activation, or on a run past its agent's runTimeoutMs.
  ACTIVATION_TIMEOUT: 504,
  RUN_TIMEOUT: 504,
} as const;

/** A stable, documented error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Structured, JSON-serialisable data that explains an error. */
export type ErrorDetails = Record<string, unknown>;

/** The base class of every error agentpool throws on purpose. */
export class AgentPoolError extends Error {
  override readonly name = 'AgentPoolError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = ERROR_CODES[code];
    this.details = details;
  }

  /** The wire form used by the server: `{ error: { code, message, details } }`. */
  toJSON(): { error: { code: ErrorCode; message: string; details: ErrorDetails } } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** True when `err` is an AgentPoolError, optionally with the given code. */
export function isAgentPoolError(err: unknown, code?: ErrorCode): err is AgentPoolError {
  return err instanceof AgentPoolError && (code === undefined || err.code === code);
}

/** A validation failure that names the offending field. */
export function validationError(field: string, message: string, details: ErrorDetails = {}): AgentPoolError {
  return new AgentPoolError('VALIDATION_FAILED', `${field} ${message}`, { field, ...details });
}
