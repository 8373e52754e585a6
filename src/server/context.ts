/**
 * What every route module is given: the pool it fronts and the project requests act in. Until
 * authentication exists, every request acts in the one development project.
 */
import type { AgentPool } from '../agent-pool.ts';

/** The dependencies of the route modules. */
export interface RouteContext {
  readonly pool: AgentPool;
  /** The project every request acts in. */
  readonly project: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The project this request acts in (set for every request by the auth hook). */
    project: string;
  }
}
