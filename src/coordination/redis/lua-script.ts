/**
 * A Lua script run by its SHA-1 (`EVALSHA`), sent whole only when Redis does not know it yet (after
 * a restart or `SCRIPT FLUSH`), and the mapping of what Redis answers to our error codes: a
 * connection that is down is `COORDINATION_UNAVAILABLE` (503, retry soon); an error the script or
 * Redis reports about the command itself is a bug, `INTERNAL_ERROR`.
 *
 * Operations that must reach Redis in the order a node made them share one script (a mode in the
 * first argument), so a script Redis forgot is re-sent for all of them alike and they stay in order.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AgentPoolError, isAgentPoolError } from '../../core/errors.ts';
import { coordinationUnavailable } from './connection.ts';

/** Replies that are about the command, not about reaching Redis. */
const COMMAND_ERROR = /^(ERR|WRONGTYPE|NOSCRIPT)\b/;

/** One Lua script. */
export class LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;

  constructor(name: string, source: string) {
    this.name = name;
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script; rejects with `COORDINATION_UNAVAILABLE` or `INTERNAL_ERROR`. */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      try {
        return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await redis.eval(this.source, keys.length, ...keys, ...args);
      }
    } catch (err) {
      throw redisFailure(err, this.name);
    }
  }
}

/** What a failed Redis command means for the caller. */
export function redisFailure(err: unknown, what: string): AgentPoolError {
  if (isAgentPoolError(err)) return err;
  if (err instanceof Error && err.name === 'ReplyError' && COMMAND_ERROR.test(err.message)) {
    return new AgentPoolError('INTERNAL_ERROR', `Redis refused ${what}: ${err.message}`, {}, { cause: err });
  }
  return coordinationUnavailable(err);
}
