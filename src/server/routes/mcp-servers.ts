/**
 * MCP server routes: declare (PUT, 201 created / 200 replaced), read, list and delete a project's
 * MCP servers. A project key acts in its own project; the admin key in the `agentpool-project`
 * header's project or `?project=`. Secrets referenced from the environment are shown as
 * `{ env }`, never resolved; literal values of secret-looking headers and variables are masked.
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { errorResponses } from '../schemas.ts';
import { scopedProject } from './pool.ts';

const tags = ['mcp-servers'];
const nameParams = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', description: 'The server name: letters, digits and "-", at most 32.' },
  },
} as const;
const projectQuerystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    project: {
      type: 'string',
      description: 'With the admin key: the project to act in. A project key may only name its own.',
    },
  },
} as const;
const valueSchema = {
  anyOf: [
    { type: 'string' },
    {
      type: 'object',
      required: ['env'],
      additionalProperties: false,
      properties: { env: { type: 'string' } },
    },
  ],
} as const;
const declarationSchema = {
  type: 'object',
  description:
    '`{ transport: "http", url, headers?, timeoutMs? }` or `{ transport: "stdio", command, args?, env?, cwd?, timeoutMs? }`; header and env values are strings or `{ "env": "VAR" }`.',
  properties: {
    transport: { type: 'string', enum: ['http', 'stdio'] },
    url: { type: 'string' },
    headers: { type: 'object', additionalProperties: valueSchema },
    command: { type: 'string' },
    args: { type: 'array', items: { type: 'string' } },
    env: { type: 'object', additionalProperties: valueSchema },
    cwd: { type: 'string' },
    timeoutMs: { type: 'integer' },
  },
} as const;
const serverSchema = {
  type: 'object',
  properties: {
    project: { type: 'string' },
    name: { type: 'string' },
    declaration: declarationSchema,
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
  },
} as const;

type Query = { Querystring: { project?: string } };
type Named = Query & { Params: { name: string } };

/** Registers the `/v1/mcp-servers` routes. */
export function registerMcpServerRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  app.put<Named & { Body: unknown }>(
    '/v1/mcp-servers/:name',
    {
      schema: {
        tags,
        summary: 'Declare or replace an MCP server of the project',
        description:
          'Agents reference its tools as `mcp:<name>` or `mcp:<name>/<tool>`. 201 when new, 200 when replaced. Stdio servers need the admin key unless `tools.mcp.allowStdio` is `all` (403 `FORBIDDEN`); a project key may reference only environment variables starting with `tools.mcp.projectEnvPrefix`.',
        params: nameParams,
        querystring: projectQuerystring,
        body: { type: 'object' },
        response: { 200: serverSchema, 201: serverSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const project = await scopedProject(pool, request, request.query.project, false);
      const { server, created } = await pool.mcp.put(project, request.params.name, request.body, {
        admin: request.admin,
      });
      return reply.code(created ? 201 : 200).send(server);
    },
  );

  app.get<Named>(
    '/v1/mcp-servers/:name',
    {
      schema: {
        tags,
        summary: 'Get a declared MCP server',
        description:
          'Secrets referenced from the environment show as `{ "env": "VAR" }`; secret-looking literal values are masked.',
        params: nameParams,
        querystring: projectQuerystring,
        response: { 200: serverSchema, ...errorResponses },
      },
    },
    async (request) =>
      pool.mcp.get(await scopedProject(pool, request, request.query.project, false), request.params.name),
  );

  app.get<Query>(
    '/v1/mcp-servers',
    {
      schema: {
        tags,
        summary: "List the project's MCP servers",
        querystring: projectQuerystring,
        response: {
          200: { type: 'object', properties: { data: { type: 'array', items: serverSchema } } },
          ...errorResponses,
        },
      },
    },
    async (request) => ({
      data: await pool.mcp.list(await scopedProject(pool, request, request.query.project, false)),
    }),
  );

  app.delete<Named>(
    '/v1/mcp-servers/:name',
    {
      schema: {
        tags,
        summary: 'Delete a declared MCP server',
        description:
          'Its sessions on this node close. Agents referencing it fail their next activation with `MCP_SERVER_NOT_FOUND`.',
        params: nameParams,
        querystring: projectQuerystring,
        response: { 204: { type: 'null', description: 'Deleted.' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      await pool.mcp.delete(
        await scopedProject(pool, request, request.query.project, false),
        request.params.name,
      );
      return reply.code(204).send();
    },
  );
}
