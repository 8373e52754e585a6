import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  LanguageModelV3CallOptions,
  LanguageModelV3FunctionTool,
  LanguageModelV3Prompt,
  LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import { DemoLanguageModel, findArithmetic } from '../../src/models/demo-model.ts';

const tool = (name: string): LanguageModelV3FunctionTool => ({
  type: 'function',
  name,
  inputSchema: { type: 'object' },
});
const calculator = tool('calculator');
const currentTime = tool('current_time');

const ask = (text: string, extra: Partial<LanguageModelV3CallOptions> = {}): LanguageModelV3CallOptions => ({
  prompt: [
    { role: 'system', content: 'You are a terse assistant.' },
    { role: 'user', content: [{ type: 'text', text }] },
  ],
  ...extra,
});

/** A conversation where the model asked the calculator and the tool answered `result`. */
function afterCalculator(result: unknown): LanguageModelV3Prompt {
  return [
    { role: 'user', content: [{ type: 'text', text: 'what is 17*23' }] },
    {
      role: 'assistant',
      content: [
        {
          type: 'tool-call',
          toolCallId: 'demo_call_1',
          toolName: 'calculator',
          input: { expression: '17*23' },
        },
      ],
    },
    {
      role: 'tool',
      content: [
        {
          type: 'tool-result',
          toolCallId: 'demo_call_1',
          toolName: 'calculator',
          output: { type: 'json', value: result as never },
        },
      ],
    },
  ];
}

async function collect(
  stream: ReadableStream<LanguageModelV3StreamPart>,
): Promise<LanguageModelV3StreamPart[]> {
  const parts: LanguageModelV3StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

describe('demo model', () => {
  const model = new DemoLanguageModel('assistant');

  it('identifies itself as provider demo, interface v3, with the given model id', () => {
    assert.equal(model.specificationVersion, 'v3');
    assert.equal(model.provider, 'demo');
    assert.equal(model.modelId, 'assistant');
    assert.equal(new DemoLanguageModel('anything-at-all').modelId, 'anything-at-all');
  });

  it('calls the calculator for arithmetic when one is offered', async () => {
    const result = await model.doGenerate(ask('what is 17*23', { tools: [calculator, currentTime] }));
    assert.equal(result.content.length, 1);
    const call = result.content[0];
    assert.equal(call?.type, 'tool-call');
    assert.ok(call?.type === 'tool-call');
    assert.equal(call.toolName, 'calculator');
    assert.equal(typeof call.input, 'string');
    assert.deepEqual(JSON.parse(call.input), { expression: '17*23' });
    assert.equal(result.finishReason.unified, 'tool-calls');
  });

  it('recognises + - / and parentheses, and ignores numbers that are not a question', () => {
    assert.equal(findArithmetic('What is (2 + 3) * 4?'), '(2 + 3) * 4');
    assert.equal(findArithmetic('calculate 100 / 8 - 1'), '100 / 8 - 1');
    assert.equal(findArithmetic('12+30'), '12+30');
    assert.equal(findArithmetic('my order 12-34 arrived late'), undefined);
    assert.equal(findArithmetic('what is the answer'), undefined);
  });

  it('does not call a tool that is not offered, or when toolChoice is none', async () => {
    const noTools = await model.doGenerate(ask('what is 17*23'));
    assert.equal(noTools.content[0]?.type, 'text');
    const none = await model.doGenerate(
      ask('what is 17*23', { tools: [calculator], toolChoice: { type: 'none' } }),
    );
    assert.equal(none.content[0]?.type, 'text');
  });

  it('answers from the calculator result once the tool has run', async () => {
    const result = await model.doGenerate({ prompt: afterCalculator(391), tools: [calculator] });
    assert.deepEqual(result.content, [{ type: 'text', text: '[demo] 17*23 = 391' }]);
    assert.equal(result.finishReason.unified, 'stop');
    const wrapped = await model.doGenerate({ prompt: afterCalculator({ result: 391 }) });
    assert.deepEqual(wrapped.content, [{ type: 'text', text: '[demo] 17*23 = 391' }]);
  });

  it('calls current_time when asked the time and the tool is offered, then reports it', async () => {
    const result = await model.doGenerate(ask('What time is it?', { tools: [calculator, currentTime] }));
    const call = result.content[0];
    assert.ok(call?.type === 'tool-call');
    assert.equal(call.toolName, 'current_time');
    assert.deepEqual(JSON.parse(call.input), {});
    const answer = await model.doGenerate({
      prompt: [
        { role: 'user', content: [{ type: 'text', text: 'What time is it?' }] },
        {
          role: 'assistant',
          content: [{ type: 'tool-call', toolCallId: 't1', toolName: 'current_time', input: {} }],
        },
        {
          role: 'tool',
          content: [
            {
              type: 'tool-result',
              toolCallId: 't1',
              toolName: 'current_time',
              output: { type: 'text', value: '12:00 UTC' },
            },
          ],
        },
      ],
    });
    assert.deepEqual(answer.content, [{ type: 'text', text: '[demo] The current time is 12:00 UTC.' }]);
  });

  it('echoes anything else, labelled as a demo, and points to real models for instructions', async () => {
    const result = await model.doGenerate(ask('tell me a story', { tools: [calculator] }));
    const text = result.content[0];
    assert.ok(text?.type === 'text');
    assert.ok(text.text.startsWith('[demo] You said: "tell me a story"'), text.text);
    assert.match(text.text, /instructions/);
    assert.equal(result.finishReason.unified, 'stop');
  });

  it('is deterministic: the same prompt gives the same answer and usage', async () => {
    const a = await model.doGenerate(ask('what is 6*7', { tools: [calculator] }));
    const b = await model.doGenerate(ask('what is 6*7', { tools: [calculator] }));
    assert.deepEqual(a.content, b.content);
    assert.deepEqual(a.usage, b.usage);
  });

  it('estimates usage at about four characters per token', async () => {
    const result = await model.doGenerate({
      prompt: [{ role: 'user', content: [{ type: 'text', text: 'x'.repeat(400) }] }],
    });
    assert.equal(result.usage.inputTokens.total, 100);
    const text = result.content[0];
    assert.ok(text?.type === 'text');
    assert.equal(result.usage.outputTokens.total, Math.ceil(text.text.length / 4));
  });

  it('streams text as text-start, several text-deltas, text-end, then finish with usage', async () => {
    const { stream } = await model.doStream(ask('stream this sentence back to me please'));
    const parts = await collect(stream);
    const types = parts.map((p) => p.type);
    assert.equal(types[0], 'stream-start');
    assert.equal(types.at(-1), 'finish');
    const start = types.indexOf('text-start');
    const end = types.indexOf('text-end');
    assert.ok(start >= 0 && end > start);
    const deltas = parts.filter((p) => p.type === 'text-delta');
    assert.ok(deltas.length >= 3, `several deltas, got ${deltas.length}`);
    const streamed = deltas.map((p) => p.delta).join('');
    const generated = await model.doGenerate(ask('stream this sentence back to me please'));
    assert.deepEqual(generated.content, [{ type: 'text', text: streamed }]);
    const finish = parts.at(-1);
    assert.ok(finish?.type === 'finish');
    assert.deepEqual(finish.usage, generated.usage);
    assert.equal(finish.finishReason.unified, 'stop');
  });

  it('streams a tool call as a tool-call part and finishes with tool-calls', async () => {
    const { stream } = await model.doStream(ask('what is 17*23', { tools: [calculator] }));
    const parts = await collect(stream);
    const call = parts.find((p) => p.type === 'tool-call');
    assert.ok(call?.type === 'tool-call');
    assert.equal(call.toolName, 'calculator');
    assert.deepEqual(JSON.parse(call.input), { expression: '17*23' });
    const finish = parts.at(-1);
    assert.ok(finish?.type === 'finish');
    assert.equal(finish.finishReason.unified, 'tool-calls');
    assert.equal(
      parts.some((p) => p.type === 'text-delta'),
      false,
    );
  });

  it('rejects with the signal reason when already aborted', async () => {
    const ac = new AbortController();
    const reason = new Error('stop now');
    ac.abort(reason);
    await assert.rejects(model.doGenerate(ask('hi', { abortSignal: ac.signal })), (err) => err === reason);
    await assert.rejects(model.doStream(ask('hi', { abortSignal: ac.signal })), (err) => err === reason);
  });

  it('errors the stream with the signal reason when aborted mid-stream', async () => {
    const ac = new AbortController();
    const { stream } = await model.doStream(
      ask('a long enough message to stream', { abortSignal: ac.signal }),
    );
    const reader = stream.getReader();
    const first = await reader.read();
    assert.equal(first.value?.type, 'stream-start');
    const reason = new Error('user cancelled');
    ac.abort(reason);
    await assert.rejects(reader.read(), (err) => err === reason);
  });
});
