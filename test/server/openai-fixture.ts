/**
 * The fixture of the OpenAI-compatibility tests: a real agentpool server listening on a socket,
 * its agents' model served by the fake OpenAI provider over HTTP (through the `openai` provider,
 * which passes JSON schemas on), so a test drives a real client at the front and asserts what
 * the model received at the back.
 */
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { buildServer } from '../../src/server/app.ts';
import { type FakeChatRequest, type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { testTools } from '../support/run-fixture.ts';

/** The model of the fixture's agents. */
export const FAKE_MODEL = 'openai/fake-model';

/** A listening server over a memory pool whose agents talk to the fake provider. */
export interface OpenAIFixture {
  readonly pool: AgentPool;
  readonly app: FastifyInstance;
  readonly fake: FakeOpenAI;
  /** Calls of the agents' own tools (`custom:add` …). */
  readonly calls: { add: number; boom: number; slow: number };
  /** The server's base URL, ending in `/v1`. */
  readonly baseURL: string;
  /** The last request the model received. */
  lastRequest(): FakeChatRequest;
  close(): Promise<void>;
}

/**
 * Starts the fake provider, a pool with agents `assistant` (instructions "You are helpful.") and
 * `adder` (the `add` tool), and a server listening on 127.0.0.1.
 */
export async function openAIFixture(): Promise<OpenAIFixture> {
  const fake = await startFakeOpenAI();
  const { tools, calls } = testTools();
  const pool = await createAgentPool({
    store: 'memory',
    ttlSweepIntervalMs: 0,
    models: { providers: { openai: { apiKey: 'test-key', baseURL: fake.url } }, env: {} },
    tools: { tools },
  });
  await pool.agents.create('default', {
    name: 'assistant',
    model: FAKE_MODEL,
    instructions: 'You are helpful.',
  });
  await pool.agents.create('default', {
    name: 'adder',
    model: FAKE_MODEL,
    instructions: 'Add with the tool.',
    tools: ['custom:add'],
    maxTokens: 500,
  });
  const app = await buildServer(pool);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    pool,
    app,
    fake,
    calls,
    baseURL: `${base}/v1`,
    lastRequest() {
      const last = fake.requests.at(-1);
      if (last === undefined) throw new Error('the model received no request');
      return last;
    },
    async close() {
      try {
        await app.close();
      } finally {
        try {
          await pool.close();
        } finally {
          await fake.close();
        }
      }
    },
  };
}

/** Each message the model received as one line: `role: text`, tool calls as ` name(args)`, results as `tool <id> => text`. */
export function transcript(request: FakeChatRequest): string[] {
  return request.messages.map((m) => {
    const calls = (m.tool_calls ?? []) as { function: { name: string; arguments: string } }[];
    const text =
      typeof m.content === 'string' ? m.content : m.content == null ? '' : JSON.stringify(m.content);
    if (m.role === 'tool') return `tool ${m.tool_call_id ?? ''} => ${text}`;
    return `${m.role}: ${text}${calls.map((c) => ` ${c.function.name}(${c.function.arguments})`).join('')}`;
  });
}
