/** An agent pool whose `openai-compatible` provider is the fake server, for end-to-end run tests. */
import { createAgentPool, type AgentPoolOptions } from '../../src/agent-pool.ts';
import { defineTool } from '../../src/tools/tool.ts';
import { startFakeOpenAI } from './fake-openai.ts';

export const P = 'acme';
export const MODEL = 'openai-compatible/fake-model';

/** Tools the tests' agents use, registered in code (`custom:<name>`). */
export function testTools() {
  const calls = { add: 0, boom: 0, slow: 0 };
  const add = defineTool({
    name: 'add',
    description: 'Adds two numbers',
    inputSchema: {
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
      additionalProperties: false,
    },
    execute: (input) => {
      calls.add++;
      return { sum: (input.a as number) + (input.b as number) };
    },
  });
  const boom = defineTool({
    name: 'boom',
    description: 'Always fails',
    inputSchema: { type: 'object', properties: {} },
    execute: () => {
      calls.boom++;
      throw new Error('the warehouse is on fire');
    },
  });
  const slow = defineTool({
    name: 'slow',
    description: 'Waits until aborted',
    inputSchema: { type: 'object', properties: {} },
    execute: (_input, ctx) =>
      new Promise((_resolve, reject) => {
        calls.slow++;
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
      }),
  });
  return { tools: [add, boom, slow], calls };
}

/** A fake provider and a pool talking to it. */
export async function runFixture(options: AgentPoolOptions = {}) {
  const fake = await startFakeOpenAI();
  const { tools, calls } = testTools();
  const pool = await createAgentPool({
    store: 'memory',
    models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'test-key' } }, env: {} },
    tools: { tools },
    ...options,
  });
  return {
    fake,
    pool,
    calls,
    async close() {
      await pool.close();
      await fake.close();
    },
  };
}
