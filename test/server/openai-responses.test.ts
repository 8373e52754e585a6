/**
 * `/v1/responses` and `/v1/models` driven by the official `openai` client against a listening
 * server, with the fake provider behind it recording what the model actually received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { type OpenAIFixture, openAIFixture, transcript } from './openai-fixture.ts';

const WEATHER: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

const runIdOf = (response: { id: string }) => response.id.slice('resp_'.length);
/** `store` as the server answered it (the SDK's Response type leaves the field out). */
const storeOf = (response: object) => (response as { store?: unknown }).store;

describe('responses and models with the official openai client', () => {
  let f: OpenAIFixture;
  let client: OpenAI;
  before(async () => {
    f = await openAIFixture();
    client = new OpenAI({ baseURL: f.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => f.close());

  describe('POST /v1/responses', () => {
    it('honours instructions for this response only, and input items as the conversation', async () => {
      f.fake.script({ text: 'Bonjour Ada.' });
      const first = await client.responses.create({
        model: 'assistant',
        instructions: 'Answer in French.',
        input: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'user', content: 'My name is Ada.' },
          { role: 'assistant', content: 'Noted.' },
          { role: 'user', content: [{ type: 'input_text', text: 'Greet me.' }] },
        ],
      });
      assert.equal(first.output_text, 'Bonjour Ada.');
      assert.equal(first.instructions, 'Answer in French.');
      assert.equal(storeOf(first), true);
      assert.deepEqual(transcript(f.lastRequest()), [
        'system: You are helpful.',
        'system: Answer in French.\n\nBe brief.',
        'user: My name is Ada.',
        'assistant: Noted.',
        'user: Greet me.',
      ]);

      f.fake.script({ text: 'Ada.' });
      const second = await client.responses.create({
        model: 'assistant',
        input: 'What is my name?',
        previous_response_id: first.id,
      });
      assert.equal(second.instructions, null);
      assert.deepEqual(transcript(f.lastRequest()), [
        'system: You are helpful.',
        'user: My name is Ada.',
        'assistant: Noted.',
        'user: Greet me.',
        'assistant: Bonjour Ada.',
        'user: What is my name?',
      ]);
    });

    it('ends with function_call items when the model calls a client tool; function_call_output continues it', async () => {
      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_p' }] });
      const first = await client.responses.create({
        model: 'adder',
        input: 'Weather in Paris?',
        tools: [WEATHER],
      });
      assert.equal(first.status, 'completed');
      assert.equal(first.output_text, '');
      const call = first.output.find((item) => item.type === 'function_call');
      assert.ok(call?.type === 'function_call');
      assert.equal(call.call_id, 'call_p');
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
      assert.deepEqual(
        first.tools.map((t) => t.type === 'function' && t.name),
        ['get_weather'],
      );
      assert.deepEqual(
        (f.lastRequest().tools ?? []).map((t) => t.function.name),
        ['add', 'get_weather'],
      );

      f.fake.script({ text: 'Sunny in Paris.' });
      const second = await client.responses.create({
        model: 'adder',
        previous_response_id: first.id,
        input: [{ type: 'function_call_output', call_id: 'call_p', output: 'sunny' }],
        tools: [WEATHER],
      });
      assert.equal(second.output_text, 'Sunny in Paris.');
      assert.deepEqual(transcript(f.lastRequest()).slice(1), [
        'user: Weather in Paris?',
        'assistant:  get_weather({"city":"Paris"})',
        'tool call_p => sunny',
      ]);

      // The results of another response's calls are refused, naming the item.
      const err = await client.responses
        .create({
          model: 'adder',
          previous_response_id: second.id,
          input: [{ type: 'function_call_output', call_id: 'call_p', output: 'again' }],
          tools: [WEATHER],
        })
        .then(
          () => assert.fail('expected a refusal'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof BadRequestError, String(err));
      assert.equal(err.param, 'input[0].call_id');
    });

    it('streams function calls as output items that the SDK accumulates', async () => {
      f.fake.script({
        text: 'Let me check.',
        toolCalls: [{ name: 'get_weather', arguments: { city: 'Rome' }, id: 'call_r' }],
      });
      const stream = await client.responses.create({
        model: 'assistant',
        input: 'Rome?',
        tools: [WEATHER],
        stream: true,
      });
      const events: OpenAI.Responses.ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      assert.deepEqual(
        events.map((e) => e.type).filter((t) => t !== 'response.output_text.delta'),
        [
          'response.created',
          'response.in_progress',
          'response.output_item.added',
          'response.content_part.added',
          'response.output_text.done',
          'response.content_part.done',
          'response.output_item.done',
          'response.output_item.added',
          'response.function_call_arguments.delta',
          'response.function_call_arguments.done',
          'response.output_item.done',
          'response.completed',
        ],
      );
      const completed = events.at(-1);
      assert.ok(completed?.type === 'response.completed');
      assert.deepEqual(
        completed.response.output.map((item) => item.type),
        ['message', 'function_call'],
      );

      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, id: 'call_o' }] });
      const final = await client.responses
        .stream({ model: 'assistant', input: 'Oslo?', tools: [WEATHER] })
        .finalResponse();
      const call = final.output[0];
      assert.ok(call?.type === 'function_call');
      assert.equal(call.arguments, '{"city":"Oslo"}');
    });

    it('passes text.format json_schema, max_output_tokens, tool_choice and sampling on to the model', async () => {
      const schema = {
        type: 'object',
        properties: { n: { type: 'number' } },
        required: ['n'],
        additionalProperties: false,
      };
      f.fake.script({ text: '{"n":4}' });
      const response = await client.responses.create({
        model: 'adder',
        input: 'two plus two, as JSON',
        text: { format: { type: 'json_schema', name: 'number', schema, strict: true } },
        max_output_tokens: 64,
        temperature: 0.1,
        top_p: 0.3,
        tools: [WEATHER],
        tool_choice: { type: 'function', name: 'get_weather' },
      });
      assert.deepEqual(JSON.parse(response.output_text), { n: 4 });
      assert.equal(response.max_output_tokens, 64);
      const sent = f.lastRequest();
      assert.deepEqual(sent['response_format'], {
        type: 'json_schema',
        json_schema: { name: 'number', schema, strict: true },
      });
      assert.equal(sent['max_tokens'], 64);
      assert.equal(sent['temperature'], 0.1);
      assert.equal(sent['top_p'], 0.3);
      assert.deepEqual(sent['tool_choice'], { type: 'function', function: { name: 'get_weather' } });
    });

    it('refuses what it cannot honour with a 400 naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ input: 'hi', background: true }, 'background'],
        [{ input: 'hi', conversation: 'conv_1' }, 'conversation'],
        [{ input: 'hi', include: ['message.output_text.logprobs'] }, 'include'],
        [{ input: 'hi', reasoning: { effort: 'high' } }, 'reasoning'],
        [{ input: 'hi', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
        [
          {
            input: [
              { type: 'reasoning', id: 'r', summary: [] },
              { role: 'user', content: 'hi' },
            ],
          },
          'input[0].type',
        ],
        [
          { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] },
          'input[0].content[0]',
        ],
        [{ input: [{ role: 'assistant', content: 'last' }] }, 'input[0]'],
        [{ input: 'hi', text: { format: { type: 'yaml' } } }, 'text.format.type'],
        [{ input: 'hi', max_output_tokens: 0 }, 'max_output_tokens'],
      ];
      for (const [extra, param] of cases) {
        const err = await client.responses
          .create({
            model: 'assistant',
            ...extra,
          } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming)
          .then(
            () => assert.fail(`expected ${param} to be refused`),
            (e: unknown) => e,
          );
        assert.ok(err instanceof BadRequestError, `${param}: ${String(err)}`);
        assert.equal(err.code, 'VALIDATION_FAILED', param);
        assert.equal(err.param, param);
      }
    });
  });

  describe('GET /v1/responses/{id}', () => {
    it('retrieves a response as it was answered, including function calls and the response it continued', async () => {
      f.fake.script(
        { text: 'First answer.' },
        { toolCalls: [{ name: 'get_weather', arguments: { city: 'Nice' }, id: 'call_n' }] },
      );
      const first = await client.responses.create({
        model: 'assistant',
        input: 'hello',
        metadata: { k: 'v' },
      });
      const second = await client.responses.create({
        model: 'assistant',
        input: 'weather in Nice?',
        previous_response_id: first.id,
        tools: [WEATHER],
      });

      const got = await client.responses.retrieve(first.id);
      assert.equal(got.id, first.id);
      assert.equal(got.status, 'completed');
      assert.equal(got.output_text, 'First answer.');
      assert.deepEqual(got.usage, first.usage);
      assert.deepEqual(got.metadata, { k: 'v' });
      assert.equal(got.previous_response_id, null);

      const again = await client.responses.retrieve(second.id);
      assert.equal(again.previous_response_id, first.id);
      assert.deepEqual(again.output, second.output);
    });

    it('is a 404 for an unknown id and for a chat completion', async () => {
      f.fake.script({ text: 'chat' });
      const chat = await client.chat.completions.create({
        model: 'assistant',
        messages: [{ role: 'user', content: 'hi' }],
      });
      for (const id of ['resp_run_nope', 'nothing', `resp_${chat.id.slice('chatcmpl-'.length)}`]) {
        const err = await client.responses.retrieve(id).then(
          () => assert.fail(`expected ${id} to be unknown`),
          (e: unknown) => e,
        );
        assert.ok(err instanceof NotFoundError, String(err));
        assert.equal(err.code, 'RUN_NOT_FOUND');
      }
    });
  });

  describe('store: false', () => {
    it('keeps nothing: the answer says so, the previous thread gets nothing, the response cannot be retrieved or continued', async () => {
      f.fake.script({ text: 'Stored.' }, { text: 'Not stored.' });
      const first = await client.responses.create({ model: 'assistant', input: 'remember me' });
      const threadId = (await f.pool.runs.get('default', runIdOf(first))).threadId;
      assert.ok(threadId !== null);
      const before = (await f.pool.threads.get('default', threadId)).messageCount;

      const ephemeral = await client.responses.create({
        model: 'assistant',
        input: 'a secret',
        previous_response_id: first.id,
        store: false,
        metadata: { secret: 'yes' },
      });
      assert.equal(storeOf(ephemeral), false);
      assert.equal(ephemeral.output_text, 'Not stored.');
      assert.deepEqual(transcript(f.lastRequest()).slice(1), [
        'user: remember me',
        'assistant: Stored.',
        'user: a secret',
      ]);
      assert.equal((await f.pool.threads.get('default', threadId)).messageCount, before, 'nothing appended');

      const run = await f.pool.runs.get('default', runIdOf(ephemeral));
      assert.deepEqual([run.input, run.output, run.metadata, run.threadId], ['', null, {}, null]);
      assert.ok(run.inputTokens > 0, 'its accounting stays');

      const missing = await client.responses.retrieve(ephemeral.id).then(
        () => assert.fail('expected a 404'),
        (e: unknown) => e,
      );
      assert.ok(missing instanceof NotFoundError);
      const orphan = await client.responses
        .create({ model: 'assistant', input: 'next', previous_response_id: ephemeral.id })
        .then(
          () => assert.fail('expected a 404'),
          (e: unknown) => e,
        );
      assert.ok(orphan instanceof NotFoundError);
      assert.equal(orphan.param, 'previous_response_id');
    });

    it('streams with store: false and blanks the record before the client hears the response completed', async () => {
      f.fake.script({ text: 'Streamed, not stored.' });
      const final = await client.responses
        .stream({ model: 'assistant', input: 'stream a secret', store: false })
        .finalResponse();
      assert.equal(storeOf(final), false);
      assert.equal(final.output_text, 'Streamed, not stored.');
      const run = await f.pool.runs.get('default', runIdOf(final));
      assert.equal(run.input, '');
    });
  });

  describe('GET /v1/models', () => {
    it("lists the project's agents as models and retrieves one; an unknown one is a 404", async () => {
      const page = await client.models.list();
      assert.deepEqual(
        page.data.map((m) => [m.id, m.object, m.owned_by]),
        [
          ['adder', 'model', 'default'],
          ['assistant', 'model', 'default'],
        ],
      );
      const adder = await client.models.retrieve('adder');
      assert.equal(adder.id, 'adder');
      assert.ok(adder.created > 0 && adder.created < 1e11, 'created is in seconds');
      const err = await client.models.retrieve('nobody').then(
        () => assert.fail('expected a 404'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'AGENT_NOT_FOUND');
    });

    it('pages with limit and after, saying whether more follow', async () => {
      const get = async (query: string) =>
        (await fetch(`${f.baseURL}/models${query}`)).json() as Promise<{
          data: { id: string }[];
          has_more: boolean;
          first_id: string | null;
          last_id: string | null;
        }>;
      const first = await get('?limit=1');
      assert.deepEqual(
        first.data.map((m) => m.id),
        ['adder'],
      );
      assert.equal(first.has_more, true);
      const second = await get(`?limit=1&after=${first.last_id ?? ''}`);
      assert.deepEqual(
        second.data.map((m) => m.id),
        ['assistant'],
      );
      assert.equal(second.has_more, false);
      const bad = await fetch(`${f.baseURL}/models?limit=0`);
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'limit');
    });
  });
});
