/**
 * What a failed MCP request means: the error the model is shown, the latency outcome, what the
 * server's breaker hears (a dead server, a live one, or nothing) and whether the session must be
 * dropped. The server answered (an MCP error other than a timeout or a closed connection): a live
 * server, `TOOL_FAILED`. It timed out (`TOOL_TIMEOUT` for a call) or could not be reached
 * (`MCP_UNAVAILABLE`): a dead one. The run cancelled the call: nothing, `RUN_CANCELLED`.
 */
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { AgentPoolError, isAgentPoolError } from '../../core/errors.ts';

/** A failure classified. */
export interface McpFailure {
  readonly error: AgentPoolError;
  readonly outcome: 'error' | 'timeout' | 'unavailable';
  readonly breaker: 'failure' | 'success' | 'none';
  readonly timedOut: boolean;
  readonly drop: boolean;
}

/** Where a failure happened. */
export interface McpFailureContext {
  readonly server: string;
  readonly project: string;
}

/** `MCP_UNAVAILABLE` for a server, saying why. */
export function mcpUnavailable(ctx: McpFailureContext, why: string): AgentPoolError {
  return new AgentPoolError('MCP_UNAVAILABLE', `MCP server "${ctx.server}" is unavailable: ${why}`, {
    server: ctx.server,
    project: ctx.project,
  });
}

/** True when the server answered 404 to the session's id: it restarted or expired the session. */
export function isExpiredSession(err: unknown): boolean {
  return err instanceof StreamableHTTPError && err.code === 404;
}

/**
 * Classifies `err` of a tool call (`signal` the call's, aborted when the run is cancelled) or, with
 * `signal` undefined, of a listing.
 */
export function classifyMcpFailure(
  err: unknown,
  signal: AbortSignal | undefined,
  ctx: McpFailureContext,
): McpFailure {
  if (signal?.aborted === true) {
    // The run was cancelled (an MCP tool has no timer of runTool's: its timeout is the request's).
    const error = new AgentPoolError('RUN_CANCELLED', `MCP call to "${ctx.server}" cancelled`, {
      server: ctx.server,
    });
    return { error, outcome: 'error', breaker: 'none', timedOut: false, drop: false };
  }
  if (isAgentPoolError(err)) {
    return { error: err, outcome: 'unavailable', breaker: 'none', timedOut: false, drop: false };
  }
  if (err instanceof McpError && err.code === (ErrorCode.RequestTimeout as number)) {
    // A call that outlived its timeout is the tool's timeout, as for any tool (and counted so in
    // the tool's figures); for the breaker, the server is hanging.
    // The SDK's timeout error carries the timeout: the call's, or the connection's when the call
    // had to open a session first.
    const timeoutMs = (err.data as { timeout?: unknown } | undefined)?.timeout;
    const inTime = `in time${typeof timeoutMs === 'number' ? ` (${timeoutMs} ms)` : ''}`;
    const error =
      signal === undefined
        ? mcpUnavailable(ctx, `it did not answer ${inTime}`)
        : new AgentPoolError('TOOL_TIMEOUT', `MCP server "${ctx.server}" did not answer the call ${inTime}`, {
            server: ctx.server,
          });
    return { error, outcome: 'timeout', breaker: 'failure', timedOut: true, drop: true };
  }
  if (err instanceof McpError && err.code !== (ErrorCode.ConnectionClosed as number)) {
    const error = new AgentPoolError('TOOL_FAILED', `MCP server "${ctx.server}": ${err.message}`, {
      server: ctx.server,
      mcpCode: err.code,
    });
    return { error, outcome: 'error', breaker: 'success', timedOut: false, drop: false };
  }
  const error = mcpUnavailable(ctx, err instanceof Error ? err.message : String(err));
  return { error, outcome: 'unavailable', breaker: 'failure', timedOut: false, drop: true };
}
