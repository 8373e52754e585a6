/**
 * The AI SDK (`@ai-sdk/openai-compatible` + `ai`) and LangChain (`@langchain/openai`) against a
 * listening agentpool server, as their users write them: multi-turn conversations, client tools
 * and structured output, with the fake provider behind the server recording what the model got.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { tool as langchainTool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { generateObject, generateText, type ModelMessage, tool, type ToolSet } from 'ai';
import * as z from 'zod';
import { type OpenAIFixture, openAIFixture, transcript } from './openai-fixture.ts';

describe('other OpenAI clients against agentpool', () => {
  let f: OpenAIFixture;
  before(async () => {
    f = await openAIFixture();
  });
  after(() => f.close());

  describe('AI SDK: createOpenAICompatible + ai', () => {
    const provider = () => createOpenAICompatible({ name: 'agentpool', baseURL: f.baseURL });

    it('generateText sends a multi-turn conversation and returns client tool calls, then continues with their results', async () => {
      const tools = {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: z.object({ city: z.string() }),
        }),
      } as ToolSet; // `tool()` types trip over exactOptionalPropertyTypes; the value is what users write
      const system = 'Be brief.';
      const messages: ModelMessage[] = [
        { role: 'user', content: 'I am in Paris.' },
        { role: 'assistant', content: 'Noted.' },
        { role: 'user', content: 'What is the weather here?' },
      ];
      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' }, id: 'call_ai' }] });
      const first = await generateText({ model: provider()('adder'), system, messages, tools });
      assert.equal(first.finishReason, 'tool-calls');
      assert.deepEqual(
        first.toolCalls.map((c) => [c.toolCallId, c.toolName, c.input]),
        [['call_ai', 'get_weather', { city: 'Paris' }]],
      );
      assert.deepEqual(transcript(f.lastRequest()), [
        'system: Add with the tool.',
        'system: Be brief.',
        'user: I am in Paris.',
        'assistant: Noted.',
        'user: What is the weather here?',
      ]);

      f.fake.script({ text: 'Sunny in Paris.' });
      const second = await generateText({
        model: provider()('adder'),
        system,
        tools,
        messages: [
          ...messages,
          ...first.response.messages,
          {
            role: 'tool',
            content: [
              {
                type: 'tool-result',
                toolCallId: 'call_ai',
                toolName: 'get_weather',
                output: { type: 'text', value: 'sunny' },
              },
            ],
          },
        ],
      });
      assert.equal(second.text, 'Sunny in Paris.');
      assert.deepEqual(transcript(f.lastRequest()).slice(-2), [
        'assistant:  get_weather({"city":"Paris"})',
        'tool call_ai => sunny',
      ]);
    });

    it('generateObject gets structured output: the schema reaches the model', async () => {
      const structured = createOpenAICompatible({
        name: 'agentpool',
        baseURL: f.baseURL,
        supportsStructuredOutputs: true,
      });
      f.fake.script({ text: '{"city":"Paris","celsius":24}' });
      const { object } = await generateObject({
        model: structured('assistant'),
        schema: z.object({ city: z.string(), celsius: z.number() }),
        prompt: 'Weather in Paris as JSON',
      });
      assert.deepEqual(object, { city: 'Paris', celsius: 24 });
      const format = f.lastRequest()['response_format'] as {
        type: string;
        json_schema: { schema: { required: string[] } };
      };
      assert.equal(format.type, 'json_schema');
      assert.deepEqual(format.json_schema.schema.required, ['city', 'celsius']);
    });
  });

  describe('LangChain: ChatOpenAI', () => {
    const chat = () =>
      new ChatOpenAI({
        model: 'adder',
        apiKey: 'unused',
        maxRetries: 0,
        configuration: { baseURL: f.baseURL },
      });

    it('invoke sends the whole multi-turn conversation', async () => {
      f.fake.script({ text: 'You said Ada.' });
      const answer = await chat().invoke([
        new SystemMessage('Be brief.'),
        new HumanMessage('My name is Ada.'),
        new AIMessage('Hello Ada.'),
        new HumanMessage('What did I say my name was?'),
      ]);
      assert.equal(answer.content, 'You said Ada.');
      assert.deepEqual(transcript(f.lastRequest()), [
        'system: Add with the tool.',
        'system: Be brief.',
        'user: My name is Ada.',
        'assistant: Hello Ada.',
        'user: What did I say my name was?',
      ]);
    });

    it('bindTools returns tool calls, and a ToolMessage continues the conversation', async () => {
      const weather = langchainTool(() => 'unused: the client runs it', {
        name: 'get_weather',
        description: 'The weather in a city',
        schema: z.object({ city: z.string() }),
      });
      const model = chat().bindTools([weather]);
      f.fake.script({ toolCalls: [{ name: 'get_weather', arguments: { city: 'Rome' }, id: 'call_lc' }] });
      const question = new HumanMessage('Weather in Rome?');
      const asked = await model.invoke([question]);
      assert.deepEqual(
        asked.tool_calls?.map((c) => [c.id, c.name, c.args]),
        [['call_lc', 'get_weather', { city: 'Rome' }]],
      );

      f.fake.script({ text: 'Warm in Rome.' });
      const answer = await model.invoke([
        question,
        asked,
        new ToolMessage({ tool_call_id: 'call_lc', content: 'warm' }),
      ]);
      assert.equal(answer.content, 'Warm in Rome.');
      assert.deepEqual(transcript(f.lastRequest()).slice(-2), [
        'assistant:  get_weather({"city":"Rome"})',
        'tool call_lc => warm',
      ]);
    });

    it('withStructuredOutput gets a typed object: the JSON schema reaches the model', async () => {
      f.fake.script({ text: '{"city":"Oslo","celsius":-3}' });
      const result = await chat()
        .withStructuredOutput(z.object({ city: z.string(), celsius: z.number() }), { name: 'weather' })
        .invoke('Weather in Oslo as JSON');
      assert.deepEqual(result, { city: 'Oslo', celsius: -3 });
      const format = f.lastRequest()['response_format'] as { type: string; json_schema: { name: string } };
      assert.equal(format.type, 'json_schema');
      assert.equal(format.json_schema.name, 'weather');
    });

    it('streams', async () => {
      f.fake.script({ text: 'streamed words' });
      let text = '';
      for await (const chunk of await chat().stream('hi')) text += String(chunk.content);
      assert.equal(text, 'streamed words');
    });
  });
});
