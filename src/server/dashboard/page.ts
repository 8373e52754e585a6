/**
 * `GET /dashboard`: the operator's page, served by agentpool itself from the files next to this
 * one (`assets/`: HTML, one JS module, CSS), read once when the server is built. Nothing comes
 * from elsewhere (the content security policy says so to the browser). The page holds no data: it
 * asks for a key and calls the API (`/v1/pool/live` …) with it, so the page itself is open.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The dashboard's files and their content types. */
const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;

/** The path prefix the dashboard is served under (open: the page asks for a key itself). */
export const DASHBOARD_PATH = '/dashboard';

const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(`./assets/${name}`, import.meta.url));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }
  return assets;
}

/** Registers `GET /dashboard` and its assets (`/dashboard/dashboard.js`, `/dashboard/dashboard.css`). */
export function registerDashboardRoutes(app: FastifyInstance): void {
  const assets = loadAssets();
  const send = async (name: string, request: FastifyRequest, reply: FastifyReply) => {
    const asset = assets.get(name);
    if (asset === undefined) return reply.callNotFound();
    // Revalidated on every load (304 when unchanged), so an upgraded server's page shows at once.
    reply
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag)
      .header('content-security-policy', POLICY)
      .header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  const hide = { schema: { hide: true } };
  app.get(DASHBOARD_PATH, hide, (request, reply) => send('index.html', request, reply));
  app.get<{ Params: { file: string } }>(`${DASHBOARD_PATH}/:file`, hide, (request, reply) =>
    send(request.params.file === '' ? 'index.html' : request.params.file, request, reply),
  );
}
