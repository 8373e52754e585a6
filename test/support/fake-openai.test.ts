import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeOpenAI, startFakeOpenAI } from './fake-openai.ts';

const userAsks = (text: string, extra: Record<string, unknown> = {}) => ({
  model: 'fake-model',
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: text },
  ],
  ...extra,
});

function post(fake: FakeOpenAI, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${fake.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-key' },
    body: JSON.stringify(body),
    ...init,
  });
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
interface ToolCallWire {
  index?: number;
  id?: string;
  type?: string;
  function: { name?: string; arguments: string };
}
interface Completion {
  object: string;
  model: string;
  choices: Array<{
    message: { role: string; content: string | null; tool_calls?: ToolCallWire[] };
    finish_reason: string;
  }>;
  usage: Usage;
}
interface Chunk {
  object: string;
  choices: Array<{
    delta: { role?: string; content?: string | null; tool_calls?: ToolCallWire[] };
    finish_reason: string | null;
  }>;
  usage?: Usage | null;
}

const completion = async (res: Response): Promise<Completion> => (await res.json()) as Completion;

/** The JSON payloads of an SSE body, and whether it ended with `data: [DONE]`. */
async function sse(res: Response): Promise<{ chunks: Chunk[]; done: boolean }> {
  const text = await res.text();
  const events = text.split('\n\n').filter((e) => e !== '');
  for (const e of events) assert.match(e, /^data: /, `every SSE event is a data line: ${e}`);
  const payloads = events.map((e) => e.slice('data: '.length));
  const done = payloads.at(-1) === '[DONE]';
  return { chunks: payloads.filter((p) => p !== '[DONE]').map((p) => JSON.parse(p) as Chunk), done };
}

describe('fake OpenAI server', () => {
  let fake: FakeOpenAI;
  before(async () => {
    fake = await startFakeOpenAI();
  });
  after(() => fake.close());

  it('listens on 127.0.0.1 with a base URL ending in /v1', () => {
    assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it('echoes the last user message when nothing is scripted', async () => {
    const res = await post(fake, userAsks('hello fake'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = await completion(res);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, 'fake-model');
    assert.equal(body.choices[0]?.message.role, 'assistant');
    assert.equal(body.choices[0]?.message.content, 'Echo: hello fake');
    assert.equal(body.choices[0]?.finish_reason, 'stop');
    const usage = body.usage;
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  it('records each request body and its headers', async () => {
    const before = fake.requests.length;
    const tools = [{ type: 'function', function: { name: 'calculator', parameters: { type: 'object' } } }];
    await (await post(fake, userAsks('record me', { tools }))).text();
    assert.equal(fake.requests.length, before + 1);
    const recorded = fake.requests.at(-1);
    assert.equal(recorded?.messages.at(-1)?.content, 'record me');
    assert.deepEqual(recorded?.tools, tools);
    assert.equal(fake.headers.at(-1)?.authorization, 'Bearer test-key');
  });

  it('answers scripted tool calls with JSON-encoded arguments', async () => {
    fake.script({ toolCalls: [{ name: 'calculator', arguments: { expression: '17*23' }, id: 'call_x' }] });
    const body = await completion(await post(fake, userAsks('what is 17*23')));
    const message = body.choices[0]?.message;
    assert.equal(message?.content, null);
    assert.deepEqual(message?.tool_calls, [
      {
        id: 'call_x',
        type: 'function',
        function: { name: 'calculator', arguments: '{"expression":"17*23"}' },
      },
    ]);
    assert.equal(body.choices[0]?.finish_reason, 'tool_calls');
  });

  it('uses scripted replies in order, then falls back to the echo', async () => {
    fake.script({ text: 'first' }, () => ({ text: 'second' }));
    const texts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const body = await completion(await post(fake, userAsks('again')));
      texts.push(body.choices[0]?.message.content ?? '');
    }
    assert.deepEqual(texts, ['first', 'second', 'Echo: again']);
  });

  it('streams text as chat.completion.chunk deltas, a usage chunk, then [DONE]', async () => {
    fake.script({ text: 'streamed answer text here' });
    const res = await post(fake, userAsks('hi', { stream: true, stream_options: { include_usage: true } }));
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const { chunks, done } = await sse(res);
    assert.ok(done, 'ends with data: [DONE]');
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: 'assistant', content: '' });
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.content || []);
    assert.ok(deltas.length >= 3, `text arrives in several deltas, got ${deltas.length}`);
    assert.equal(deltas.join(''), 'streamed answer text here');
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.ok((last?.usage?.completion_tokens ?? 0) > 0);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
  });

  it('sends no usage chunk unless stream_options.include_usage is set', async () => {
    const { chunks, done } = await sse(await post(fake, userAsks('hi', { stream: true })));
    assert.ok(done);
    assert.ok(chunks.every((c) => c.usage === undefined));
  });

  it('streams tool calls the way OpenAI does: index, id and name first, then arguments in pieces', async () => {
    fake.script({ toolCalls: [{ name: 'calculator', arguments: { expression: '17*23' } }] });
    const { chunks, done } = await sse(await post(fake, userAsks('what is 17*23', { stream: true })));
    assert.ok(done);
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    assert.equal(chunks[0]?.choices[0]?.delta.content, null);
    const [head, ...rest] = calls;
    assert.equal(head?.index, 0);
    assert.match(head?.id ?? '', /^call_/);
    assert.equal(head?.type, 'function');
    assert.equal(head?.function.name, 'calculator');
    assert.equal(head?.function.arguments, '');
    assert.ok(rest.length >= 2, 'arguments come in pieces');
    for (const piece of rest) {
      assert.equal(piece.index, 0);
      assert.equal(piece.id, undefined);
    }
    assert.equal(rest.map((p) => p.function.arguments).join(''), '{"expression":"17*23"}');
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
  });

  it('answers scripted errors with their status, headers and an OpenAI error body', async () => {
    fake.script({ status: 429, headers: { 'retry-after': '7' } });
    const res = await post(fake, userAsks('hi'));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    const body = (await res.json()) as { error: { message: unknown } };
    assert.equal(typeof body.error.message, 'string');
    fake.script({ status: 500, body: { error: { message: 'custom' } } });
    const res500 = await post(fake, userAsks('hi'));
    assert.equal(res500.status, 500);
    assert.deepEqual(await res500.json(), { error: { message: 'custom' } });
  });

  it('delays a reply by delayMs, then sends the wrapped reply', async () => {
    fake.script({ delayMs: 20, then: { text: 'late' } });
    const body = await completion(await post(fake, userAsks('hi')));
    assert.equal(body.choices[0]?.message.content, 'late');
  });

  it('notices when a client abandons a hanging request', { timeout: 5000 }, async () => {
    const abortedBefore = fake.aborted;
    fake.script({ hang: true });
    const ac = new AbortController();
    const seen = fake.requests.length;
    const pending = post(fake, userAsks('hi'), { signal: ac.signal });
    while (fake.requests.length === seen) await sleep(5);
    ac.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    while (fake.aborted === abortedBefore) await sleep(5);
    assert.equal(fake.aborted, abortedBefore + 1);
  });

  it('drops a stream midway: some chunks arrive, then the connection dies without [DONE]', async () => {
    fake.script({ dropMidStream: true });
    const res = await post(fake, userAsks('hi', { stream: true }));
    assert.equal(res.status, 200);
    assert.ok(res.body);
    const reader = res.body.getReader();
    let received = '';
    const decoder = new TextDecoder();
    await assert.rejects(async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received += decoder.decode(value);
      }
    });
    assert.match(received, /chat\.completion\.chunk/);
    assert.doesNotMatch(received, /\[DONE\]/);
  });

  it('lists models and answers unknown routes with 404', async () => {
    const models = (await (await fetch(`${fake.url}/models`)).json()) as {
      object: string;
      data: Array<{ id: string }>;
    };
    assert.equal(models.object, 'list');
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['fake-model'],
    );
    const missing = await fetch(`${fake.url}/nope`);
    assert.equal(missing.status, 404);
    await missing.text();
  });

  it('rejects a body that is not JSON with 400', async () => {
    const res = await post(fake, undefined, { body: '{not json' });
    assert.equal(res.status, 400);
    await res.text();
  });
});

describe('fake OpenAI server shutdown', () => {
  it('close() ends hanging requests and open sockets', { timeout: 5000 }, async () => {
    const fake = await startFakeOpenAI();
    fake.script({ hang: true });
    const pending = post(fake, userAsks('hi'));
    while (fake.requests.length === 0) await sleep(5);
    await fake.close();
    await assert.rejects(pending);
  });
});
