/**
 * `GET /v1/pool/health`: the health monitor's last report on this node. The admin (and development
 * mode) sees every check with its value and thresholds; a project key sees the status and each
 * check's name and status only, since the figures tell other tenants' load (as `/v1/pool/stats`
 * keeps them to the admin). It answers 200 whatever the status: it is a report, not a probe
 * (`/readyz` is the probe).
 */
import type { FastifyInstance } from 'fastify';
import type { AgentPool } from '../../agent-pool.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, ref } from '../schemas.ts';

/** The health report as the admin sees it, or a project key (status and check names only). */
export function healthView(pool: AgentPool, admin: boolean) {
  const report = pool.health.current();
  if (admin) return report;
  return {
    status: report.status,
    checkedAt: report.checkedAt,
    checks: report.checks.map((c) => ({ name: c.name, status: c.status })),
  };
}

/** Registers `GET /v1/pool/health`. */
export function registerPoolHealthRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.get(
    '/v1/pool/health',
    {
      schema: {
        tags: ['pool'],
        summary: "This node's health: ok, degraded or overloaded, and the checks that decide it",
        description:
          "The health monitor's last check (every `pool.health.intervalMs`): `status` is the worst of the checks; `overloaded` means new runs get 503 `OVERLOADED` with `Retry-After` while runs in flight finish. For the admin (or in development mode) each check has its `value`, `unit` and `threshold` (`{ degraded, overloaded }`, 0 = off), and `totals` what the monitor did since start; a project key gets `status` and each check's `name` and `status` only.",
        response: { 200: ref('PoolHealth'), ...errorResponses },
      },
    },
    async (request) => healthView(pool, request.admin),
  );
}
