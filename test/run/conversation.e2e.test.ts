/**
 * What a caller may bring to `runs.start` besides its input — earlier turns, extra instructions,
 * client tools and their results, call settings, `store: false` — checked against what the model
 * provider (the fake OpenAI-compatible server, over HTTP) actually received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import { createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { ClientTool, Turn } from '../../src/run/conversation.ts';
import { textOf } from '../../src/run/messages.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import type { FakeChatRequest } from '../support/fake-openai.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

type Fixture = Awaited<ReturnType<typeof runFixture>>;

async function collect(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** The role and text of each message the model received (tool calls as `name(args)`, results as `=> text`). */
function transcript(request: FakeChatRequest | undefined): string[] {
  assert.ok(request !== undefined, 'the model was called');
  return request.messages.map((m) => {
    const calls = (m.tool_calls ?? []) as { function: { name: string; arguments: string } }[];
    const text =
      typeof m.content === 'string' ? m.content : m.content == null ? '' : JSON.stringify(m.content);
    if (m.role === 'tool') return `tool ${m.tool_call_id ?? ''} => ${text}`;
    return `${m.role}: ${text}${calls.map((c) => ` ${c.function.name}(${c.function.arguments})`).join('')}`;
  });
}

const WEATHER: ClientTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

/** A conversation that stopped at a call of the client's get_weather tool. */
const ASKED_WEATHER: Turn[] = [
  { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
  {
    role: 'assistant',
    content: [
      { type: 'tool-call', toolCallId: 'call_w1', toolName: 'get_weather', input: { city: 'Paris' } },
    ],
  },
];

describe('runs with a caller-kept conversation, client tools and call settings', () => {
  let f: Fixture;
  before(async () => {
    f = await runFixture({ ttlSweepIntervalMs: 0 });
    await f.pool.agents.create(P, { name: 'plain', model: MODEL, instructions: 'Be brief.' });
    await f.pool.agents.create(P, {
      name: 'tooled',
      model: MODEL,
      tools: ['custom:add'],
      instructions: 'Add.',
    });
    await f.pool.agents.create(P, { name: 'capped', model: MODEL, maxTokens: 100 });
  });
  after(() => f.close());

  describe('earlier turns and instructions', () => {
    it('sends the earlier turns in order, then the input, after the agent instructions and the extra ones', async () => {
      f.fake.script({ text: 'You are Ada.' });
      const run = await (
        await f.pool.runs.start(P, 'plain', {
          input: 'Who am I?',
          instructions: 'Answer in English.',
          history: [
            { role: 'user', content: [{ type: 'text', text: 'My name is Ada.' }] },
            { role: 'assistant', content: [{ type: 'text', text: 'Hello Ada.' }] },
          ],
        })
      ).result;
      assert.equal(run.status, 'succeeded');
      assert.equal(run.output, 'You are Ada.');
      assert.equal(run.input, 'Who am I?');
      assert.deepEqual(transcript(f.fake.requests.at(-1)), [
        'system: Be brief.',
        'system: Answer in English.',
        'user: My name is Ada.',
        'assistant: Hello Ada.',
        'user: Who am I?',
      ]);
    });

    it('on a thread, appends the earlier turns with the input; the instructions are not kept', async () => {
      const thread = await f.pool.threads.create(P);
      f.fake.script({ text: 'Noted.' }, { text: 'Still Ada.' });
      await (
        await f.pool.runs.start(P, 'plain', {
          threadId: thread.id,
          input: 'Remember it.',
          instructions: 'Only this run.',
          history: [{ role: 'user', content: [{ type: 'text', text: 'My name is Ada.' }] }],
        })
      ).result;
      await (
        await f.pool.runs.start(P, 'plain', { threadId: thread.id, input: 'Who am I?' })
      ).result;
      const messages = (await f.pool.threads.messages(P, thread.id)).data;
      assert.deepEqual(
        messages.map((m) => `${m.role}: ${textOf(m.content)}`),
        [
          'user: My name is Ada.',
          'user: Remember it.',
          'assistant: Noted.',
          'user: Who am I?',
          'assistant: Still Ada.',
        ],
      );
      assert.deepEqual(transcript(f.fake.requests.at(-1)).slice(0, 2), [
        'system: Be brief.',
        'user: My name is Ada.',
      ]);
    });

    it('refuses malformed turns and unanswered tool calls, naming the field, and records nothing', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ history: [{ role: 'system', content: [] }] }, 'history[0].role'],
        [
          { history: [{ role: 'user', content: [{ type: 'image', url: 'x' }] }] },
          'history[0].content[0].type',
        ],
        [
          {
            history: [
              { role: 'user', content: [{ type: 'text', text: 'hi' }] },
              {
                role: 'tool',
                content: [
                  {
                    type: 'tool-result',
                    toolCallId: 'nope',
                    toolName: 'x',
                    output: { type: 'text', value: '1' },
                  },
                ],
              },
            ],
          },
          'history[1].content[0].toolCallId',
        ],
        [
          { history: [...ASKED_WEATHER, { role: 'user', content: [{ type: 'text', text: 'and?' }] }] },
          'history[2]',
        ],
        [{ history: ASKED_WEATHER }, 'toolResults'],
        [{ instructions: 42 }, 'instructions'],
      ];
      for (const [extra, field] of cases) {
        const requests = f.fake.requests.length;
        await assert.rejects(
          f.pool.runs.start(P, 'plain', { input: 'go', ...extra } as never),
          (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === field,
          field,
        );
        assert.equal(f.fake.requests.length, requests);
      }
    });
  });

  describe('client tools', () => {
    it("offers them next to the agent's tools; a call of one ends the run, which the next run continues with its result", async () => {
      const before = f.calls.add;
      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_w1' }] });
      const handle = await f.pool.runs.start(P, 'tooled', {
        input: 'Weather in Paris?',
        clientTools: [WEATHER],
      });
      const events = await collect(handle.stream.events());
      const run = await handle.result;
      assert.equal(run.status, 'succeeded');
      assert.equal(run.output, null, 'no final answer: the client calls are the result');
      const calls = events.filter((e) => e.type === 'tool.call');
      assert.deepEqual(
        calls.map((e) => e.type === 'tool.call' && [e.toolCallId, e.toolName, e.input, e.client]),
        [['call_w1', 'get_weather', { city: 'Paris' }, true]],
      );
      assert.equal(events.filter((e) => e.type === 'tool.result').length, 0);
      assert.equal(f.calls.add, before);
      const offered = f.fake.requests.at(-1)?.tools ?? [];
      assert.deepEqual(
        offered.map((t) => t.function.name),
        ['add', 'get_weather'],
      );
      assert.deepEqual(offered[1]?.function.parameters, WEATHER.parameters);

      f.fake.script({ text: 'It is sunny in Paris.' });
      const next = await (
        await f.pool.runs.start(P, 'tooled', {
          history: ASKED_WEATHER,
          toolResults: [{ toolCallId: 'call_w1', output: '{"sky":"sunny"}' }],
          clientTools: [WEATHER],
        })
      ).result;
      assert.equal(next.output, 'It is sunny in Paris.');
      assert.deepEqual(JSON.parse(next.input), [{ toolCallId: 'call_w1', output: '{"sky":"sunny"}' }]);
      assert.deepEqual(transcript(f.fake.requests.at(-1)), [
        'system: Add.',
        'user: Weather in Paris?',
        'assistant:  get_weather({"city":"Paris"})',
        'tool call_w1 => {"sky":"sunny"}',
      ]);
    });

    it('stateless: drops the agent calls of the step that stopped, unrun; the answer holds the client calls only', async () => {
      const before = f.calls.add;
      f.fake.script({
        toolCalls: [
          { name: 'add', arguments: { a: 1, b: 2 }, id: 'call_add' },
          { name: 'get_weather', arguments: { city: 'Rome' }, id: 'call_w2' },
        ],
      });
      const handle = await f.pool.runs.start(P, 'tooled', { input: 'go', clientTools: [WEATHER] });
      const events = await collect(handle.stream.events());
      assert.equal((await handle.result).output, null);
      assert.equal(f.calls.add, before, 'the agent tool was not run');
      assert.deepEqual(
        events.flatMap((e) => (e.type === 'tool.call' ? [e.toolName] : [])),
        ['get_weather'],
      );
    });

    it('on a thread: runs the agent calls of that step and keeps their results; the next run brings the client results', async () => {
      const before = f.calls.add;
      const thread = await f.pool.threads.create(P);
      f.fake.script({
        toolCalls: [
          { name: 'add', arguments: { a: 1, b: 2 }, id: 'call_add' },
          { name: 'get_weather', arguments: { city: 'Rome' }, id: 'call_w3' },
        ],
      });
      const first = await (
        await f.pool.runs.start(P, 'tooled', { threadId: thread.id, input: 'go', clientTools: [WEATHER] })
      ).result;
      assert.equal(first.output, null);
      assert.equal(f.calls.add, before + 1, 'the agent tool ran');
      assert.deepEqual(
        (await f.pool.threads.messages(P, thread.id)).data.map((m) => m.role),
        ['user', 'assistant', 'tool'],
      );

      // A result for a call that is not open, or not every open call answered: refused, nothing written.
      await assert.rejects(
        f.pool.runs.start(P, 'tooled', {
          threadId: thread.id,
          toolResults: [{ toolCallId: 'call_add', output: 'x' }],
          clientTools: [WEATHER],
        }),
        (err: unknown) =>
          isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === 'toolResults[0].toolCallId',
      );
      assert.equal((await f.pool.threads.get(P, thread.id)).messageCount, 3);

      f.fake.script({ text: 'Rome is warm; 1+2 is 3.' });
      const second = await (
        await f.pool.runs.start(P, 'tooled', {
          threadId: thread.id,
          toolResults: [{ toolCallId: 'call_w3', output: 'warm' }],
          clientTools: [WEATHER],
        })
      ).result;
      assert.equal(second.output, 'Rome is warm; 1+2 is 3.');
      assert.deepEqual(transcript(f.fake.requests.at(-1)).slice(1), [
        'user: go',
        'assistant:  add({"a":1,"b":2}) get_weather({"city":"Rome"})',
        'tool call_add => {"sum":3}',
        'tool call_w3 => warm',
      ]);
      const roles = (await f.pool.threads.messages(P, thread.id)).data.map((m) => m.role);
      assert.deepEqual(roles, ['user', 'assistant', 'tool', 'tool', 'assistant']);
    });

    it('a thread whose client calls were never answered still works: the model is told they got no result', async () => {
      const thread = await f.pool.threads.create(P);
      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, id: 'call_w4' }] });
      await (
        await f.pool.runs.start(P, 'tooled', { threadId: thread.id, input: 'go', clientTools: [WEATHER] })
      ).result;
      f.fake.script({ text: 'Never mind.' });
      const run = await (
        await f.pool.runs.start(P, 'tooled', { threadId: thread.id, input: 'forget it' })
      ).result;
      assert.equal(run.output, 'Never mind.');
      assert.deepEqual(transcript(f.fake.requests.at(-1)).slice(2), [
        'assistant:  get_weather({"city":"Oslo"})',
        'tool call_w4 => no result: the caller did not answer this call',
        'user: forget it',
      ]);
    });

    it("refuses a client tool named like one of the agent's: before anything is recorded when the instance is live, as a failed run on a cold start", async () => {
      const clash = [{ ...WEATHER, name: 'add' }];
      // Cold: the agent's tools are known only once its instance is activated.
      const pool2 = await runFixture({ ttlSweepIntervalMs: 0 });
      try {
        await pool2.pool.agents.create(P, { name: 'tooled', model: MODEL, tools: ['custom:add'] });
        const thread = await pool2.pool.threads.create(P);
        const handle = await pool2.pool.runs.start(P, 'tooled', {
          threadId: thread.id,
          input: 'go',
          clientTools: clash,
        });
        const events = await collect(handle.stream.events());
        const failed = events.at(-1);
        assert.ok(failed?.type === 'run.failed');
        assert.equal(failed.error.code, 'VALIDATION_FAILED');
        assert.equal(failed.error.details?.['field'], 'clientTools[0].name');
        assert.equal((await handle.result).status, 'failed');
        assert.equal(
          (await pool2.pool.threads.get(P, thread.id)).messageCount,
          0,
          'the input was not committed',
        );
        assert.equal(pool2.fake.requests.length, 0);
        // Warm now: refused at once.
        await assert.rejects(
          pool2.pool.runs.start(P, 'tooled', { input: 'go', clientTools: clash }),
          (err: unknown) =>
            isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === 'clientTools[0].name',
        );
      } finally {
        await pool2.close();
      }
    });

    it('never hands out a client call whose arguments are not JSON: the model is told, and tries again', async () => {
      const prompts: LanguageModelV3CallOptions['prompt'][] = [];
      const parts: LanguageModelV3StreamPart[][] = [
        [{ type: 'tool-call', toolCallId: 'bad', toolName: 'get_weather', input: '{"city": Par' }],
        [{ type: 'tool-call', toolCallId: 'good', toolName: 'get_weather', input: '{"city":"Paris"}' }],
      ];
      const scripted: LanguageModelV3 = {
        specificationVersion: 'v3',
        provider: 'scripted',
        modelId: 'x',
        supportedUrls: {},
        doGenerate: () => Promise.reject(new Error('streams only')),
        doStream: (options) => {
          prompts.push(options.prompt);
          const step = parts.shift() ?? [];
          const usage = { inputTokens: { total: 1 }, outputTokens: { total: 1 } } as never;
          return Promise.resolve({
            stream: new ReadableStream<LanguageModelV3StreamPart>({
              start(controller) {
                for (const part of step) controller.enqueue(part);
                controller.enqueue({
                  type: 'finish',
                  finishReason: { unified: 'tool-calls', raw: undefined },
                  usage,
                });
                controller.close();
              },
            }),
          });
        },
      };
      const own = await createAgentPool({
        store: 'memory',
        ttlSweepIntervalMs: 0,
        models: { custom: { scripted: () => scripted } },
      });
      try {
        await own.agents.create(P, { name: 'scripted', model: 'scripted/x' });
        const handle = await own.runs.start(P, 'scripted', { input: 'Paris?', clientTools: [WEATHER] });
        const events = await collect(handle.stream.events());
        const run = await handle.result;
        assert.equal(run.steps, 2);
        assert.equal(run.output, null);
        assert.deepEqual(
          events.flatMap((e) => (e.type === 'tool.call' && e.client === true ? [e.toolCallId] : [])),
          ['good'],
        );
        const told = events.find((e) => e.type === 'tool.result');
        assert.ok(told?.type === 'tool.result' && told.toolCallId === 'bad');
        assert.equal(told.error?.code, 'TOOL_INPUT_INVALID');
        assert.equal(prompts[1]?.at(-1)?.role, 'tool');
      } finally {
        await own.close();
      }
    });

    it('refuses bad client tools and tool results, naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ clientTools: [{ name: 'has space' }] }, 'clientTools[0].name'],
        [{ clientTools: [WEATHER, WEATHER] }, 'clientTools[1].name'],
        [{ clientTools: [{ name: 'f', parameters: { type: 'string' } }] }, 'clientTools[0].parameters'],
        [{ toolResults: [] }, 'toolResults'],
        [{ toolResults: [{ toolCallId: 'call_w1' }] }, 'toolResults[0].output'],
        [
          { history: ASKED_WEATHER, toolResults: [{ toolCallId: 'other', output: '' }] },
          'toolResults[0].toolCallId',
        ],
        [{ settings: { toolChoice: { type: 'tool', toolName: 'nobody' } } }, 'settings.toolChoice.toolName'],
      ];
      await f.pool.runs.start(P, 'tooled', { input: 'warm up' }).then((h) => h.result);
      for (const [extra, field] of cases) {
        await assert.rejects(
          f.pool.runs.start(P, 'tooled', { input: 'go', ...extra } as never),
          (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === field,
          field,
        );
      }
    });
  });

  describe('call settings', () => {
    it('reach the model call; the output cap never exceeds the agent maxTokens', async () => {
      f.fake.script({ text: '{"ok":true}' }, { text: 'capped' });
      await (
        await f.pool.runs.start(P, 'capped', {
          input: 'json please',
          settings: {
            temperature: 0.3,
            topP: 0.9,
            maxOutputTokens: 40,
            stopSequences: ['END'],
            seed: 7,
            presencePenalty: 0.5,
            frequencyPenalty: -0.5,
            responseFormat: { type: 'json' },
          },
        })
      ).result;
      const sent = f.fake.requests.at(-1);
      assert.equal(sent?.['temperature'], 0.3);
      assert.equal(sent?.['top_p'], 0.9);
      assert.equal(sent?.['max_tokens'], 40);
      assert.deepEqual(sent?.['stop'], ['END']);
      assert.equal(sent?.['seed'], 7);
      assert.equal(sent?.['presence_penalty'], 0.5);
      assert.equal(sent?.['frequency_penalty'], -0.5);
      assert.deepEqual(sent?.['response_format'], { type: 'json_object' });

      await (
        await f.pool.runs.start(P, 'capped', { input: 'more', settings: { maxOutputTokens: 5000 } })
      ).result;
      assert.equal(f.fake.requests.at(-1)?.['max_tokens'], 100, "the agent's maxTokens is the ceiling");
    });

    it('a forced tool choice holds for the first model call only; none holds for every call', async () => {
      f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: '2' });
      await (
        await f.pool.runs.start(P, 'tooled', {
          input: 'add',
          settings: { toolChoice: { type: 'tool', toolName: 'add' } },
        })
      ).result;
      const [first, second] = f.fake.requests.slice(-2);
      assert.deepEqual(first?.['tool_choice'], { type: 'function', function: { name: 'add' } });
      assert.equal(second?.['tool_choice'], undefined);

      f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: '2' });
      await (
        await f.pool.runs.start(P, 'tooled', { input: 'add', settings: { toolChoice: { type: 'none' } } })
      ).result;
      assert.deepEqual(
        f.fake.requests.slice(-2).map((r) => r['tool_choice']),
        ['none', 'none'],
      );
    });

    it('refuses bad settings, naming the field', async () => {
      const cases: [unknown, string][] = [
        [{ temperature: 3 }, 'settings.temperature'],
        [{ topP: -1 }, 'settings.topP'],
        [{ maxOutputTokens: 0 }, 'settings.maxOutputTokens'],
        [{ stopSequences: ['a', 'b', 'c', 'd', 'e'] }, 'settings.stopSequences'],
        [{ seed: 1.5 }, 'settings.seed'],
        [{ responseFormat: { type: 'xml' } }, 'settings.responseFormat.type'],
        [{ toolChoice: 'auto' }, 'settings.toolChoice'],
        [{ colour: 'red' }, 'settings.colour'],
      ];
      for (const [settings, field] of cases) {
        await assert.rejects(
          f.pool.runs.start(P, 'plain', { input: 'go', settings } as never),
          (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details['field'] === field,
          field,
        );
      }
    });
  });

  describe('store: false', () => {
    it("reads the thread's history, appends nothing, and leaves only the run's accounting", async () => {
      const thread = await f.pool.threads.create(P);
      f.fake.script({ text: 'Hi Ada.' }, { text: 'You are Ada.' });
      await (
        await f.pool.runs.start(P, 'plain', { threadId: thread.id, input: 'I am Ada.' })
      ).result;
      const handle = await f.pool.runs.start(P, 'plain', {
        threadId: thread.id,
        input: 'Who am I?',
        store: false,
        metadata: { secret: 'x' },
      });
      const run = await handle.result;
      assert.equal(run.output, 'You are Ada.', 'the caller gets the answer');
      assert.equal(run.threadId, null);
      assert.deepEqual(transcript(f.fake.requests.at(-1)).slice(1), [
        'user: I am Ada.',
        'assistant: Hi Ada.',
        'user: Who am I?',
      ]);
      assert.equal((await f.pool.threads.get(P, thread.id)).messageCount, 2, 'nothing appended');
      const stored = await f.pool.runs.get(P, run.id);
      assert.equal(stored.status, 'succeeded');
      assert.equal(stored.input, '');
      assert.equal(stored.output, null);
      assert.deepEqual(stored.metadata, {});
      assert.equal(stored.inputTokens, run.inputTokens);
      assert.equal(stored.cost, run.cost);
      // Its events are not kept either: only a terminal event rebuilt from the blanked record.
      const replay = await collect(await f.pool.runs.events(P, run.id));
      assert.deepEqual(
        replay.map((e) => e.type),
        ['run.finished'],
      );
    });
  });

  describe('budgets', () => {
    it("admission and every model call reserve with the run's own output cap when it is below the agent's", async () => {
      const perToken = 1 / 512; // exact binary fractions on the 1e-9 money grid: sums compare to the last bit
      const priced = await runFixture({
        ttlSweepIntervalMs: 0,
        prices: {
          prices: { [MODEL]: { inputPerMillion: perToken * 1e6, outputPerMillion: perToken * 1e6 } },
        },
      });
      try {
        await priced.pool.projects.create({ id: 'budgeted', limits: { budgets: { dailyUsd: 1000 } } });
        await priced.pool.agents.create('budgeted', { name: 'capped', model: MODEL, maxTokens: 100 });
        const reserved: number[] = [];
        const measure = async () => {
          reserved.push((await priced.pool.governance.usage('budgeted')).budgets.daily.reservedUsd);
          return { text: 'ok' };
        };
        priced.fake.script(measure, measure);
        await (
          await priced.pool.runs.start('budgeted', 'capped', { input: 'same input' })
        ).result;
        await (
          await priced.pool.runs.start('budgeted', 'capped', {
            input: 'same input',
            settings: { maxOutputTokens: 8 },
          })
        ).result;
        assert.equal(priced.fake.requests.at(-1)?.['max_tokens'], 8);
        const [agentCap, ownCap] = reserved;
        assert.ok(agentCap !== undefined && ownCap !== undefined);
        assert.equal(agentCap - ownCap, (100 - 8) * perToken);
      } finally {
        await priced.close();
      }
    });
  });
});
