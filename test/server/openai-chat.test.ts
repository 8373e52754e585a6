/**
 * `/v1/chat/completions` driven by the official `openai` client against a listening server, with
 * the fake provider behind it recording what the model actually received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { BadRequestError } from 'openai';
import { type OpenAIFixture, openAIFixture, transcript } from './openai-fixture.ts';

type ChatParams = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;

const WEATHER_TOOL: OpenAI.Chat.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('chat completions with the official openai client', () => {
  let f: OpenAIFixture;
  let client: OpenAI;
  before(async () => {
    f = await openAIFixture();
    client = new OpenAI({ baseURL: f.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => f.close());

  it("sends the whole conversation in order, the client's system message after the agent's instructions", async () => {
    f.fake.script({ text: 'Your name is Ada.' });
    const completion = await client.chat.completions.create({
      model: 'assistant',
      messages: [
        { role: 'system', content: 'Answer in one sentence.' },
        { role: 'user', content: 'My name is Ada.' },
        { role: 'assistant', content: 'Nice to meet you, Ada.' },
        { role: 'user', content: [{ type: 'text', text: 'What is my name?' }] },
      ],
    });
    assert.equal(completion.choices[0]?.message.content, 'Your name is Ada.');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(transcript(f.lastRequest()), [
      'system: You are helpful.',
      'system: Answer in one sentence.',
      'user: My name is Ada.',
      'assistant: Nice to meet you, Ada.',
      'user: What is my name?',
    ]);
    const run = await f.pool.runs.get('default', completion.id.slice('chatcmpl-'.length));
    assert.equal(run.threadId, null, 'stateless');
    assert.equal(run.input, 'What is my name?');
  });

  it('returns calls of client tools as tool_calls; the tool result continues the conversation', async () => {
    f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_p' }] });
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Weather in Paris?' },
    ];
    const first = await client.chat.completions.create({ model: 'adder', messages, tools: [WEATHER_TOOL] });
    const choice = first.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [
      { id: 'call_p', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    ]);
    assert.deepEqual(
      (f.lastRequest().tools ?? []).map((t) => t.function.name),
      ['add', 'get_weather'],
      "offered next to the agent's own tool",
    );

    f.fake.script({ text: 'It is sunny in Paris.' });
    messages.push(choice.message, { role: 'tool', tool_call_id: 'call_p', content: 'sunny, 24°C' });
    const second = await client.chat.completions.create({ model: 'adder', messages, tools: [WEATHER_TOOL] });
    assert.equal(second.choices[0]?.message.content, 'It is sunny in Paris.');
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(transcript(f.lastRequest()), [
      'system: Add with the tool.',
      'user: Weather in Paris?',
      'assistant:  get_weather({"city":"Paris"})',
      'tool call_p => sunny, 24°C',
    ]);
  });

  it("runs the agent's own tool itself in the same conversation as the client's tools", async () => {
    const before = f.calls.add;
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 2, b: 40 } }] }, { text: 'The sum is 42.' });
    const completion = await client.chat.completions.create({
      model: 'adder',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
        { role: 'assistant', content: 'Sunny.' },
        { role: 'user', content: 'Now add 2 and 40.' },
      ],
      tools: [WEATHER_TOOL],
    });
    assert.equal(completion.choices[0]?.message.content, 'The sum is 42.');
    assert.equal(completion.choices[0]?.message.tool_calls, undefined);
    assert.equal(f.calls.add, before + 1);
    const lines = transcript(f.lastRequest());
    assert.deepEqual(lines.slice(-2), [
      'assistant:  add({"a":2,"b":40})',
      `tool ${f.lastRequest().messages.at(-1)?.tool_call_id ?? ''} => {"sum":42}`,
    ]);
  });

  it('passes response_format json_schema, tool_choice and the sampling fields on to the model', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, celsius: { type: 'number' } },
      required: ['city', 'celsius'],
      additionalProperties: false,
    };
    f.fake.script({ text: '{"city":"Paris","celsius":24}' });
    const completion = await client.chat.completions.create({
      model: 'adder',
      messages: [{ role: 'user', content: 'Paris weather as JSON' }],
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
      temperature: 0.2,
      top_p: 0.5,
      max_completion_tokens: 50,
      stop: ['\n\n'],
      seed: 11,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      tools: [WEATHER_TOOL],
      tool_choice: 'none',
    });
    assert.deepEqual(JSON.parse(completion.choices[0]?.message.content ?? ''), {
      city: 'Paris',
      celsius: 24,
    });
    const sent = f.lastRequest();
    assert.deepEqual(sent['response_format'], {
      type: 'json_schema',
      json_schema: { name: 'weather', schema, strict: true },
    });
    assert.equal(sent['tool_choice'], 'none');
    assert.equal(sent['temperature'], 0.2);
    assert.equal(sent['top_p'], 0.5);
    assert.equal(sent['max_tokens'], 50);
    assert.deepEqual(sent['stop'], ['\n\n']);
    assert.equal(sent['seed'], 11);
    assert.equal(sent['presence_penalty'], 0.1);
    assert.equal(sent['frequency_penalty'], 0.2);

    // The agent's maxTokens (500) is the ceiling of what a client may ask for.
    f.fake.script({ text: 'ok' });
    await client.chat.completions.create({
      model: 'adder',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5000,
      response_format: { type: 'json_object' },
    });
    assert.equal(f.lastRequest()['max_tokens'], 500);
    assert.deepEqual(f.lastRequest()['response_format'], { type: 'json_object' });
  });

  it('streams client tool calls as tool_calls deltas and finishes with tool_calls', async () => {
    f.fake.script({
      text: 'Checking both.',
      toolCalls: [
        { name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_a' },
        { name: 'get_weather', arguments: { city: 'Rome' }, id: 'call_b' },
      ],
    });
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'Paris and Rome?' }],
      tools: [WEATHER_TOOL],
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, 'Checking both.');
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.deepEqual(
      calls.map((c) => [c.index, c.id, c.function?.name, c.function?.arguments]),
      [
        [0, 'call_a', 'get_weather', '{"city":"Paris"}'],
        [1, 'call_b', 'get_weather', '{"city":"Rome"}'],
      ],
    );
    assert.deepEqual(
      chunks.map((c) => c.choices[0]?.finish_reason).filter((r) => r != null),
      ['tool_calls'],
    );

    // The SDK's stream helper puts the same completion back together.
    f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, id: 'call_c' }] });
    const final = await client.chat.completions
      .stream({ model: 'assistant', messages: [{ role: 'user', content: 'Oslo?' }], tools: [WEATHER_TOOL] })
      .finalChatCompletion();
    assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
    assert.deepEqual(final.choices[0]?.message.tool_calls?.[0]?.function, {
      name: 'get_weather',
      arguments: '{"city":"Oslo"}',
    });
  });

  it('refuses what it cannot honour with a 400 naming the field, before the model is called', async () => {
    const user = [{ role: 'user', content: 'hi' }];
    const cases: [Record<string, unknown>, string][] = [
      [{ messages: user, n: 2 }, 'n'],
      [{ messages: user, logprobs: true }, 'logprobs'],
      [{ messages: user, parallel_tool_calls: false }, 'parallel_tool_calls'],
      [{ messages: user, store: true }, 'store'],
      [{ messages: user, audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
      [{ messages: user, reasoning_effort: 'high' }, 'reasoning_effort'],
      [{ messages: user, colour: 'red' }, 'colour'],
      [{ messages: user, temperature: 3 }, 'temperature'],
      [{ messages: user, tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0].type'],
      [
        { messages: user, tools: [{ type: 'function', function: { name: 'add' } }] },
        'tools[0].function.name',
      ],
      [{ messages: user, tool_choice: { type: 'function', function: { name: 'nobody' } } }, 'tool_choice'],
      [
        {
          messages: [
            { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
          ],
        },
        'messages[0].content[0]',
      ],
      [
        {
          messages: [
            { role: 'user', content: 'a' },
            { role: 'assistant', content: 'b' },
          ],
        },
        'messages[1].role',
      ],
      [
        {
          messages: [
            { role: 'user', content: 'a' },
            { role: 'tool', tool_call_id: 'x', content: 'b' },
          ],
        },
        'messages[1].tool_call_id',
      ],
      [
        {
          messages: [
            { role: 'user', content: 'a' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{' } }],
            },
            { role: 'tool', tool_call_id: 'c', content: 'x' },
          ],
        },
        'messages[1].tool_calls[0].function.arguments',
      ],
      [
        {
          messages: [
            { role: 'user', content: 'a' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
            },
            { role: 'user', content: 'b' },
          ],
        },
        'messages[2]',
      ],
    ];
    // A warm agent: its tools are known when the request arrives, so a clash is refused at once.
    f.fake.script({ text: 'warm' });
    await client.chat.completions.create({ model: 'adder', messages: [{ role: 'user', content: 'hi' }] });
    const requests = f.fake.requests.length;
    for (const [extra, param] of cases) {
      const err = await client.chat.completions
        .create({ model: 'adder', ...extra } as unknown as ChatParams)
        .then(
          () => assert.fail(`expected ${param} to be refused`),
          (e: unknown) => e,
        );
      assert.ok(err instanceof BadRequestError, `${param}: ${String(err)}`);
      assert.equal(err.code, 'VALIDATION_FAILED', param);
      assert.equal(err.param, param);
    }
    assert.equal(f.fake.requests.length, requests, 'the model was never called');
  });

  it("refuses a client tool named like one of the agent's on a cold agent too, naming it", async () => {
    await f.pool.agents.create('default', {
      name: 'cold-adder',
      model: 'openai/fake-model',
      tools: ['custom:add'],
    });
    const requests = f.fake.requests.length;
    for (const stream of [false, true]) {
      const err = await (async () => {
        const answer = await client.chat.completions.create({
          model: 'cold-adder',
          messages: [{ role: 'user', content: 'hi' }],
          tools: [
            WEATHER_TOOL,
            { type: 'function', function: { name: 'add', parameters: { type: 'object' } } },
          ],
          stream,
        });
        if (Symbol.asyncIterator in answer)
          for await (const _chunk of answer) assert.fail('no chunk expected');
      })().then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BadRequestError, String(err));
      assert.equal(err.param, 'tools[1].function.name');
      assert.match(err.message, /tools\[1\]\.function\.name "add"/);
      f.pool.instances.deactivate('default', 'cold-adder'); // cold again for the streamed attempt
    }
    assert.equal(f.fake.requests.length, requests);
  });

  it('takes the neutral values of fields it cannot honour otherwise', async () => {
    f.fake.script({ text: 'fine' });
    const completion = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'hi' }],
      n: 1,
      logprobs: false,
      parallel_tool_calls: true,
      store: false,
      modalities: ['text'],
      user: 'someone',
      service_tier: 'auto',
      metadata: { ticket: 'T-1' },
    });
    assert.equal(completion.choices[0]?.message.content, 'fine');
    const run = await f.pool.runs.get('default', completion.id.slice('chatcmpl-'.length));
    assert.deepEqual(run.metadata, { ticket: 'T-1' });
  });
});
