/**
 * The floor of the HTTP benchmarks: a bare fastify route answering a wait-mode run the way
 * agentpool's does (the same body schema, the same instant model's `doStream`), plus, with a run
 * store, the one SQLite write that makes a stateless wait run durable (its terminal record).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { newId } from '../src/core/ids.ts';
import type { SqliteRunStore } from '../src/store/sqlite-runs.ts';
import { runRecord } from '../test/support/run-record.ts';
import { createInstantModel } from './peers/mock-model.ts';

export const FLOOR_AGENT = 'instant';
export const FLOOR_INSTRUCTIONS = 'You are a calculator.';

/** A fastify app with the floor's POST `route`; `runs` records every run (undefined: the bare handler). */
export function floorApp(route: string, runs: SqliteRunStore | undefined): FastifyInstance {
  const model = createInstantModel();
  const app = Fastify({ logger: false });
  app.post<{ Body: { input: string } }>(
    route,
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['input'],
          properties: { input: { type: 'string' } },
        },
      },
    },
    async (request) => {
      const now = Date.now();
      const { stream } = await model.doStream({
        prompt: [
          { role: 'system', content: FLOOR_INSTRUCTIONS },
          { role: 'user', content: [{ type: 'text', text: request.body.input }] },
        ],
      });
      let output = '';
      for await (const part of stream) if (part.type === 'text-delta') output += part.delta;
      const run = runRecord({
        id: newId('run', now),
        project: 'default',
        agentId: 'agt_floor',
        agentName: FLOOR_AGENT,
        input: request.body.input,
        model: 'mock/instant',
        createdAt: now,
        startedAt: now,
      });
      await runs?.createRun({ ...run, status: 'succeeded', output, steps: 1, finishedAt: Date.now() }, []);
      return { output };
    },
  );
  return app;
}
