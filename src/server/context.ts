/**
 * What every route module is given: the pool it fronts. The project a request acts in is set on
 * the request by the auth hook.
 */
import type { AgentPool } from '../agent-pool.ts';

/** The dependencies of the route modules. */
export interface RouteContext {
  readonly pool: AgentPool;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The project this request acts in (set for every request by the auth hook). */
    project: string;
  }
}
