import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { LanguageModelV3, LanguageModelV3StreamPart } from '@ai-sdk/provider';
import type { FastifyInstance } from 'fastify';
import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { buildServer } from '../../src/server/app.ts';

/** A model (`broken/<anything>`) whose every call throws. */
const brokenModel: LanguageModelV3 = {
  specificationVersion: 'v3',
  provider: 'broken',
  modelId: 'broken',
  supportedUrls: {},
  doGenerate: () => Promise.reject(new Error('the model is broken')),
  doStream: () => Promise.reject(new Error('the model is broken')),
};

/** A model (`flaky/<anything>`) that streams some text, then fails mid-answer. */
const flakyModel: LanguageModelV3 = {
  ...brokenModel,
  provider: 'flaky',
  modelId: 'flaky',
  doStream: () =>
    Promise.resolve({
      stream: new ReadableStream<LanguageModelV3StreamPart>({
        start(controller) {
          controller.enqueue({ type: 'stream-start', warnings: [] });
          controller.enqueue({ type: 'text-start', id: 't' });
          controller.enqueue({ type: 'text-delta', id: 't', delta: 'partial ' });
          controller.enqueue({ type: 'error', error: new Error('the model broke mid-answer') });
          controller.close();
        },
      }),
    }),
};

const ANSWER = '[demo] 17*23 = 391';

describe('OpenAI-compatible endpoints (official openai client over a real socket)', () => {
  let pool: AgentPool;
  let app: FastifyInstance;
  let client: OpenAI;
  let base: string;

  beforeEach(async () => {
    pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      models: { custom: { broken: () => brokenModel, flaky: () => flakyModel } },
    });
    await pool.agents.create('default', { name: 'calc', tools: ['builtin:calculator'] });
    await pool.agents.create('default', { name: 'broken', model: 'broken/model' });
    await pool.agents.create('default', { name: 'flaky', model: 'flaky/model' });
    app = await buildServer(pool);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterEach(async () => {
    try {
      await app.close();
    } finally {
      await pool.close();
    }
  });

  describe('POST /v1/chat/completions', () => {
    it('answers with a chat.completion whose content is the run output; the last user message is the input', async () => {
      const completion = await client.chat.completions.create({
        model: 'calc',
        messages: [
          { role: 'system', content: 'Be exact.' },
          { role: 'user', content: 'what is 2*2' },
          { role: 'assistant', content: 'an earlier answer' },
          { role: 'user', content: [{ type: 'text', text: 'what is 17*23' }] },
        ],
        temperature: 0.2,
        max_tokens: 100,
        top_p: 1,
        user: 'someone',
      });
      assert.equal(completion.object, 'chat.completion');
      assert.match(completion.id, /^chatcmpl-run_/);
      assert.equal(completion.model, 'calc');
      assert.equal(typeof completion.created, 'number');
      assert.ok(completion.created < 1e11, 'created is in seconds');
      assert.equal(completion.choices.length, 1);
      assert.equal(completion.choices[0]?.index, 0);
      assert.equal(completion.choices[0]?.message.role, 'assistant');
      assert.equal(completion.choices[0]?.message.content, ANSWER);
      assert.equal(completion.choices[0]?.finish_reason, 'stop');

      const run = await pool.runs.get('default', completion.id.slice('chatcmpl-'.length));
      assert.equal(run.input, 'what is 17*23');
      assert.equal(run.threadId, null);
      assert.equal(run.status, 'succeeded');
      assert.ok(run.inputTokens > 0 && run.outputTokens > 0);
      assert.deepEqual(completion.usage, {
        prompt_tokens: run.inputTokens,
        completion_tokens: run.outputTokens,
        total_tokens: run.inputTokens + run.outputTokens,
      });
    });

    it('streams chat.completion.chunk deltas: role first, the text in pieces, a finish chunk, then [DONE]', async () => {
      const stream = await client.chat.completions.create({
        model: 'calc',
        messages: [{ role: 'user', content: 'what is 17*23' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.ok(chunks.length >= 4);
      for (const chunk of chunks) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        assert.equal(chunk.id, chunks[0]?.id);
        assert.equal(chunk.model, 'calc');
      }
      assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      assert.equal(text, ANSWER);
      const finishes = chunks.map((c) => c.choices[0]?.finish_reason).filter((r) => r != null);
      assert.deepEqual(finishes, ['stop']);
      const usage = chunks.at(-1)?.usage;
      assert.ok(usage !== undefined && usage !== null && usage.total_tokens > 0);
      assert.deepEqual(chunks.at(-1)?.choices, []);
    });

    it('ends the raw stream with data: [DONE]', async () => {
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'calc', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const blocks = (await res.text()).split('\n\n').filter((b) => b !== '');
      assert.equal(blocks.at(-1), 'data: [DONE]');
      assert.ok(blocks.every((b) => b.startsWith('data: ')));
    });

    it('an unknown model is a NotFoundError (404) carrying our code, in the OpenAI error shape', async () => {
      const err = await client.chat.completions
        .create({ model: 'nobody', messages: [{ role: 'user', content: 'hi' }] })
        .then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof NotFoundError, String(err));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'AGENT_NOT_FOUND');
      assert.equal(err.type, 'not_found_error');
      assert.match(err.message, /nobody/);
    });

    it('a run that fails is an APIError with the run error code (wait mode and streaming)', async () => {
      const messages = [{ role: 'user' as const, content: 'hi' }];
      const waited = await client.chat.completions.create({ model: 'broken', messages }).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(waited instanceof APIError, String(waited));
      assert.equal(waited.code, 'MODEL_CALL_FAILED');
      assert.equal(waited.status, 502);
      assert.equal(waited.type, 'server_error');

      const streamed = await (async () => {
        const stream = await client.chat.completions.create({ model: 'broken', messages, stream: true });
        for await (const _chunk of stream) {
          /* drain */
        }
      })().then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(streamed instanceof APIError, String(streamed));
      assert.equal(streamed.status, 502, 'a run failing before any output gets a real HTTP status');
      assert.equal(streamed.code, 'MODEL_CALL_FAILED');
    });

    it('a run that fails mid-stream ends the stream with an error chunk the SDK throws as an APIError', async () => {
      const stream = await client.chat.completions.create({
        model: 'flaky',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      let text = '';
      const err = await (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })().then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.equal(text, 'partial ');
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.code, 'MODEL_CALL_FAILED');
      assert.match(err.message, /mid-answer/);
    });

    it('rejects what it cannot honour: a last message that is not from the user or a tool, n > 1, unknown fields', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [
          {
            messages: [
              { role: 'user', content: 'a' },
              { role: 'assistant', content: 'b' },
            ],
          },
          'messages[1].role',
        ],
        [{ messages: [{ role: 'user', content: 'a' }], n: 2 }, 'n'],
        [{ messages: [{ role: 'user', content: 'a' }], colour: 'red' }, 'colour'],
      ];
      for (const [extra, param] of cases) {
        const err = await client.chat.completions
          .create({
            model: 'calc',
            ...extra,
          } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
          .then(
            () => assert.fail(`expected ${param} to be rejected`),
            (e: unknown) => e,
          );
        assert.ok(err instanceof BadRequestError, String(err));
        assert.equal(err.code, 'VALIDATION_FAILED');
        assert.equal(err.param, param);
      }
    });
  });

  describe('POST /v1/responses', () => {
    it('answers with a response object; the SDK computes output_text', async () => {
      const response = await client.responses.create({
        model: 'calc',
        input: 'what is 17*23',
        temperature: 0,
      });
      assert.equal(response.object, 'response');
      assert.match(response.id, /^resp_run_/);
      assert.equal(response.status, 'completed');
      assert.equal(response.model, 'calc');
      assert.equal(response.output_text, ANSWER);
      const item = response.output[0];
      assert.ok(item?.type === 'message');
      assert.equal(item.role, 'assistant');
      assert.equal(item.status, 'completed');
      assert.deepEqual(item.content, [{ type: 'output_text', text: ANSWER, annotations: [], logprobs: [] }]);
      const run = await pool.runs.get('default', response.id.slice('resp_'.length));
      assert.notEqual(run.threadId, null);
      assert.deepEqual(response.usage, {
        input_tokens: run.inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: run.outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: run.inputTokens + run.outputTokens,
      });
    });

    it('takes the last user item of an input array as the input, the earlier ones as history', async () => {
      const response = await client.responses.create({
        model: 'calc',
        instructions: 'Be exact.',
        input: [
          { role: 'user', content: 'what is 1+1' },
          { role: 'user', content: [{ type: 'input_text', text: 'what is 17*23' }] },
        ],
      });
      assert.equal(response.output_text, ANSWER);
      const run = await pool.runs.get('default', response.id.slice('resp_'.length));
      assert.equal(run.input, 'what is 17*23');
    });

    it('streams the Responses event sequence, which the SDK parses and accumulates', async () => {
      const stream = await client.responses.create({ model: 'calc', input: 'what is 17*23', stream: true });
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const types = events.map((e) => e.type).filter((t) => t !== 'response.output_text.delta');
      assert.deepEqual(types, [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ]);
      assert.deepEqual(
        events.map((e) => e.sequence_number),
        events.map((_e, i) => i),
      );
      const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []));
      assert.ok(deltas.length >= 1);
      assert.equal(deltas.join(''), ANSWER);
      const done = events.find((e) => e.type === 'response.output_text.done');
      assert.equal(done?.type === 'response.output_text.done' && done.text, ANSWER);
      const completed = events.at(-1);
      assert.ok(completed?.type === 'response.completed');
      assert.equal(completed.response.status, 'completed');
      assert.ok((completed.response.usage?.total_tokens ?? 0) > 0);

      // The SDK's accumulating helper rebuilds the same response from the events.
      const helper = client.responses.stream({ model: 'calc', input: 'what is 17*23' });
      let text = '';
      helper.on('response.output_text.delta', (e) => (text += e.delta));
      const final = await helper.finalResponse();
      assert.equal(text, ANSWER);
      assert.equal(final.output_text, ANSWER);
      assert.equal(final.status, 'completed');
    });

    it('previous_response_id continues the same thread, which then holds both exchanges', async () => {
      const first = await client.responses.create({ model: 'calc', input: 'what is 17*23' });
      const second = await client.responses.create({
        model: 'calc',
        input: 'and what is 2+3',
        previous_response_id: first.id,
      });
      assert.equal(second.status, 'completed');
      const firstRun = await pool.runs.get('default', first.id.slice('resp_'.length));
      const secondRun = await pool.runs.get('default', second.id.slice('resp_'.length));
      assert.ok(firstRun.threadId !== null);
      assert.equal(secondRun.threadId, firstRun.threadId);
      assert.equal(second.previous_response_id, first.id);

      const { data: messages } = await pool.threads.messages('default', firstRun.threadId);
      assert.deepEqual(
        messages.filter((m) => m.role === 'user').map((m) => m.runId),
        [firstRun.id, secondRun.id],
      );
      assert.ok(messages.filter((m) => m.role === 'assistant').length >= 2);

      // Without previous_response_id, a new thread.
      const fresh = await client.responses.create({ model: 'calc', input: 'what is 17*23' });
      const freshRun = await pool.runs.get('default', fresh.id.slice('resp_'.length));
      assert.notEqual(freshRun.threadId, firstRun.threadId);
    });

    it('an unknown previous_response_id is a NotFoundError with our code', async () => {
      const err = await client.responses
        .create({ model: 'calc', input: 'hi', previous_response_id: 'resp_run_nope' })
        .then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof NotFoundError, String(err));
      assert.equal(err.code, 'RUN_NOT_FOUND');
      assert.equal(err.param, 'previous_response_id');
    });

    it('an unknown model is a NotFoundError (404) with our code, and leaves no thread behind', async () => {
      const created: string[] = [];
      const create = pool.threads.create.bind(pool.threads);
      pool.threads.create = async (...args) => {
        const thread = await create(...args);
        created.push(thread.id);
        return thread;
      };
      const err = await client.responses.create({ model: 'nobody', input: 'hi' }).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof NotFoundError, String(err));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'AGENT_NOT_FOUND');
      assert.equal(created.length, 1);
      await assert.rejects(pool.threads.get('default', created[0]!), { code: 'THREAD_NOT_FOUND' });
    });

    it('a run that fails is an APIError with the run error code (wait mode and streaming)', async () => {
      const waited = await client.responses.create({ model: 'broken', input: 'hi' }).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(waited instanceof APIError, String(waited));
      assert.equal(waited.status, 502);
      assert.equal(waited.code, 'MODEL_CALL_FAILED');

      const streamed = await (async () => {
        const stream = await client.responses.create({ model: 'broken', input: 'hi', stream: true });
        for await (const _event of stream) {
          /* drain */
        }
      })().then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(streamed instanceof APIError, String(streamed));
      assert.equal(streamed.status, 502);
      assert.equal(streamed.code, 'MODEL_CALL_FAILED');
    });

    it('a run that fails mid-stream ends the event stream with response.failed carrying our code', async () => {
      const stream = await client.responses.create({ model: 'flaky', input: 'hi', stream: true });
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []));
      assert.deepEqual(deltas, ['partial ']);
      const failed = events.at(-1);
      assert.ok(failed?.type === 'response.failed', failed?.type);
      assert.equal(failed.response.status, 'failed');
      assert.equal(failed.response.error?.code as string, 'MODEL_CALL_FAILED');
      assert.match(failed.response.error?.message ?? '', /mid-answer/);
    });
  });
});
