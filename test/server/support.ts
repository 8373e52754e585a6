/** Fixtures of the server tests: a memory pool with a scriptable slow model, and a server over it. */
import type { LanguageModelV3, LanguageModelV3CallOptions } from '@ai-sdk/provider';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { DemoLanguageModel } from '../../src/models/demo-model.ts';
import { buildServer, type ServerOptions } from '../../src/server/app.ts';

/**
 * A model (`slow/<anything>`) that answers like the demo model, but only after `release()`; `started`
 * resolves when the first call arrives. An aborted call rejects with the signal's reason.
 */
export function slowModel() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const demo = new DemoLanguageModel('slow');
  const model: LanguageModelV3 = {
    specificationVersion: 'v3',
    provider: 'slow',
    modelId: 'slow',
    supportedUrls: {},
    doGenerate: (options: LanguageModelV3CallOptions) => demo.doGenerate(options),
    async doStream(options: LanguageModelV3CallOptions) {
      markStarted();
      const signal = options.abortSignal;
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        void gate.then(resolve);
      });
      return demo.doStream(options);
    },
  };
  return { model, release, started };
}

/** A memory pool (with the `slow` provider), a server over it, and `close()` for both. */
export async function serverFixture(options: ServerOptions = {}) {
  const slow = slowModel();
  const pool: AgentPool = await createAgentPool({
    store: 'memory',
    ttlSweepIntervalMs: 0,
    models: { custom: { slow: () => slow.model } },
  });
  const app: FastifyInstance = await buildServer(pool, options);
  return {
    pool,
    app,
    slow,
    async close() {
      try {
        await app.close();
      } finally {
        await pool.close();
      }
    },
  };
}

/** The JSON body of an inject() answer. */
export function json<T = Record<string, unknown>>(res: { body: string }): T {
  return JSON.parse(res.body) as T;
}

/** One parsed server-sent event. */
export interface SseEvent {
  id: number;
  event: string;
  data: { type: string; seq: number; [key: string]: unknown };
}

/** Parses complete `id:/event:/data:` blocks of an SSE body. */
export function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        const colon = line.indexOf(': ');
        fields.set(line.slice(0, colon), line.slice(colon + 2));
      }
      return {
        id: Number(fields.get('id')),
        event: fields.get('event') ?? '',
        data: JSON.parse(fields.get('data') ?? 'null') as SseEvent['data'],
      };
    });
}
