/**
 * The errors of tool references: one that cannot be used, as the validation error of the
 * definition field holding it, and one that failed to resolve, as an error naming it.
 */
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';

/** A reference the catalog cannot resolve, as a validation error of the definition field holding it. */
export function refError(field: string, ref: string, err: unknown): AgentPoolError {
  const message = err instanceof Error ? err.message : String(err);
  // parseToolRef's messages start with the reference already.
  const prefix = `tool reference ${JSON.stringify(ref)}: `;
  const reason = message.startsWith(prefix) ? message.slice(prefix.length) : message;
  return validationError(field, `${JSON.stringify(ref)} cannot be used: ${reason}`, { ref });
}

/** A failed resolution as the error naming its reference. */
export function describeFailure(ref: string, err: unknown): AgentPoolError {
  if (!isAgentPoolError(err)) {
    return new AgentPoolError(
      'TOOL_NOT_FOUND',
      `cannot resolve tool reference ${JSON.stringify(ref)}: ${String(err)}`,
      {
        ref,
      },
    );
  }
  // parseToolRef already names the reference; everything else gets it prefixed.
  if (err.details.ref === ref) return err;
  return new AgentPoolError(
    err.code,
    `cannot resolve tool reference ${JSON.stringify(ref)}: ${err.message}`,
    { ...err.details, ref },
    { cause: err },
  );
}
