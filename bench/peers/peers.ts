/**
 * The peers of the per-run overhead benchmark: popular TypeScript agent frameworks driven through
 * their normal public API on the instant mock model of mock-model.ts, plus a hand-written floor.
 *
 * Each factory builds its agent once (construction is not part of a run) and returns a `Peer`
 * whose `plain()` and `toolCall()` each perform one complete run:
 *   A `plain`:    one model call that returns text;
 *   B `toolCall`: model call 1 returns a call of `add` {a: 2, b: 3}; the tool runs; model call 2
 *                 returns text.
 * Runs are stateless (no memory, no checkpointer, no thread store) for every peer.
 *
 * `checkPeers()` proves every peer really performs both scenarios (model calls, tool executions,
 * final text, token usage) and throws otherwise.
 *
 * Each framework is imported lazily, by its own factory: a process that measures one contender
 * loads no other framework (no extra heap for the GC to walk, no shared JIT feedback).
 *
 * Needs bench/peers' own install: npm ci --prefix bench/peers
 */
import type { BaseChatModelCallOptions } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import type { LanguageModelV3Prompt } from '@ai-sdk/provider';
import { SCRIPT, createInstantModel, scriptedReply } from './mock-model.ts';

export { SCRIPT, createInstantModel, scriptedReply } from './mock-model.ts';

/** One contender: each call performs one complete run of the scenario. */
export interface Peer {
  name: string;
  /** Scenario A: one model call returning text. */
  plain: () => Promise<void>;
  /** Scenario B: a tool call, the tool runs, then an answer. */
  toolCall: () => Promise<void>;
}

/** Builds a peer (its agent, tools and model), once, outside any measurement. */
export type PeerFactory = () => Promise<Peer>;

const INSTRUCTIONS = 'You are a calculator. Use the add tool to add numbers.';
const ADD_DESCRIPTION = 'Adds two numbers.';
const MAX_STEPS = 5;
const addSchema = async () => {
  const { z } = await import('zod');
  return z.object({ a: z.number(), b: z.number() });
};
const add = ({ a, b }: { a: number; b: number }): number => a + b;

/**
 * The run functions return the framework's own result (so nothing wraps them while measured);
 * `Peer` promises `void` to callers, who must not depend on what a framework returns.
 */
function asPeer(name: string, plain: () => Promise<unknown>, toolCall: () => Promise<unknown>): Peer {
  return { name, plain: plain as () => Promise<void>, toolCall: toolCall as () => Promise<void> };
}

/** What checkPeers reads back from one run's result, in each framework's own terms. */
interface RunReport {
  text: string;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
}

/** A peer plus the probes its self-check needs (not used while measuring). */
interface Probed {
  peer: Peer;
  /** The same runs, returning what the framework reports. */
  report: { plain: () => Promise<RunReport>; toolCall: () => Promise<RunReport> };
  /** How many times the `add` tool has executed, and how many model calls were made. */
  toolRuns: () => number;
  modelCalls: () => number;
}

/** The result shape of AI SDK's generateText and Mastra's Agent.generate, as far as checks go. */
interface UsageResult {
  text: string;
  totalUsage: { inputTokens: number | undefined; outputTokens: number | undefined };
}
const usageReport = (res: UsageResult): RunReport => ({
  text: res.text,
  inputTokens: res.totalUsage.inputTokens,
  outputTokens: res.totalUsage.outputTokens,
});

// ---------------------------------------------------------------------------------------------
// AI SDK (ai@6): generateText, tool() with a zod schema, stopWhen: stepCountIs(5)

async function probedAiSdk(): Promise<Probed> {
  const { generateText, stepCountIs, tool: aiTool } = await import('ai');
  const model = createInstantModel('ai-sdk');
  let toolRuns = 0;
  const tools = {
    add: aiTool({
      description: ADD_DESCRIPTION,
      inputSchema: await addSchema(),
      execute: async (input) => {
        toolRuns++;
        return add(input);
      },
    }),
  };
  const plain = () => generateText({ model, system: INSTRUCTIONS, prompt: SCRIPT.prompt });
  const toolCall = () =>
    generateText({
      model,
      system: INSTRUCTIONS,
      prompt: SCRIPT.prompt,
      tools,
      stopWhen: stepCountIs(MAX_STEPS),
    });
  const report = async (r: Promise<UsageResult>): Promise<RunReport> => usageReport(await r);
  return {
    peer: asPeer('AI SDK generateText', plain, toolCall),
    report: { plain: () => report(plain()), toolCall: () => report(toolCall()) },
    toolRuns: () => toolRuns,
    modelCalls: () => model.stats.generateCalls + model.stats.streamCalls,
  };
}

// ---------------------------------------------------------------------------------------------
// Mastra: Agent.generate with a createTool() tool (zod schema), maxSteps 5, no memory

async function probedMastra(): Promise<Probed> {
  const { Agent } = await import('@mastra/core/agent');
  const { createTool } = await import('@mastra/core/tools');
  const model = createInstantModel('mastra');
  let toolRuns = 0;
  const addTool = createTool({
    id: 'add',
    description: ADD_DESCRIPTION,
    inputSchema: await addSchema(),
    execute: async (input) => {
      toolRuns++;
      return add(input);
    },
  });
  const plainAgent = new Agent({ id: 'plain', name: 'plain', instructions: INSTRUCTIONS, model });
  const toolAgent = new Agent({
    id: 'calculator',
    name: 'calculator',
    instructions: INSTRUCTIONS,
    model,
    tools: { add: addTool },
  });
  const plain = () => plainAgent.generate(SCRIPT.prompt, { maxSteps: MAX_STEPS });
  const toolCall = () => toolAgent.generate(SCRIPT.prompt, { maxSteps: MAX_STEPS });
  const report = async (r: Promise<UsageResult>): Promise<RunReport> => usageReport(await r);
  return {
    peer: asPeer('Mastra Agent.generate', plain, toolCall),
    report: { plain: () => report(plain()), toolCall: () => report(toolCall()) },
    toolRuns: () => toolRuns,
    modelCalls: () => model.stats.generateCalls + model.stats.streamCalls,
  };
}

// ---------------------------------------------------------------------------------------------
// LangGraph.js: createReactAgent(...).invoke with an instant scripted chat model

interface ScriptedCallOptions extends BaseChatModelCallOptions {
  /** Set by bindTools, as real chat models do (they put the formatted tools in the call options). */
  tools?: unknown[];
}

/** Loads LangChain and defines the scripted chat model on its BaseChatModel. */
async function scriptedChatModelClass() {
  const { BaseChatModel } = await import('@langchain/core/language_models/chat_models');
  const { AIMessage } = await import('@langchain/core/messages');
  /**
   * A LangChain chat model that answers from `SCRIPT` at once: `_generate` returns an `AIMessage`
   * (text, or `tool_calls`) with `usage_metadata`. `bindTools` binds the tools into the call
   * options like ChatOpenAI/ChatAnthropic do (`withConfig({ tools })`).
   */
  return class ScriptedChatModel extends BaseChatModel<ScriptedCallOptions> {
    calls = 0;

    _llmType(): string {
      return 'scripted';
    }

    override bindTools(tools: unknown[]) {
      return this.withConfig({ tools } as Partial<ScriptedCallOptions>);
    }

    async _generate(messages: BaseMessage[], options: this['ParsedCallOptions']): Promise<ChatResult> {
      this.calls++;
      const last = messages[messages.length - 1];
      const reply = scriptedReply((options.tools?.length ?? 0) > 0, last?.getType() === 'tool');
      const { inputTokens, outputTokens } = SCRIPT.usage;
      const usage_metadata = {
        input_tokens: inputTokens,
        output_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
      };
      // (the cast: AIMessageFields types usage_metadata as undefined under exactOptionalPropertyTypes)
      const fields = (f: object) => f as ConstructorParameters<typeof AIMessage>[0];
      const message =
        reply.kind === 'text'
          ? new AIMessage(fields({ content: reply.text, usage_metadata }))
          : new AIMessage(
              fields({
                content: '',
                tool_calls: [{ id: reply.id, name: reply.name, args: reply.args, type: 'tool_call' }],
                usage_metadata,
              }),
            );
      const text = typeof message.content === 'string' ? message.content : '';
      return { generations: [{ text, message }] };
    }
  };
}

async function probedLangGraph(): Promise<Probed> {
  const ScriptedChatModel = await scriptedChatModelClass();
  const { AIMessage } = await import('@langchain/core/messages');
  const { tool: lcTool } = await import('@langchain/core/tools');
  const { createReactAgent } = await import('@langchain/langgraph/prebuilt');
  const model = new ScriptedChatModel({});
  let toolRuns = 0;
  const addTool = lcTool(
    async (input: { a: number; b: number }) => {
      toolRuns++;
      return String(add(input));
    },
    { name: 'add', description: ADD_DESCRIPTION, schema: await addSchema() },
  );
  // recursionLimit 2 * MAX_STEPS + 1: the same step cap as the others (one model + one tool node per step)
  const config = { recursionLimit: 2 * MAX_STEPS + 1 };
  const plainAgent = createReactAgent({ llm: model, tools: [], prompt: INSTRUCTIONS });
  const toolAgent = createReactAgent({ llm: model, tools: [addTool], prompt: INSTRUCTIONS });
  const input = () => ({ messages: [{ role: 'user', content: SCRIPT.prompt }] });
  const plain = () => plainAgent.invoke(input(), config);
  const toolCall = () => toolAgent.invoke(input(), config);
  const report = async (r: ReturnType<typeof plain>): Promise<RunReport> => {
    const res = await r;
    const last = res.messages[res.messages.length - 1];
    let inputTokens = 0;
    let outputTokens = 0;
    for (const m of res.messages) {
      const usage = (m as { usage_metadata?: { input_tokens: number; output_tokens: number } })
        .usage_metadata;
      if (m instanceof AIMessage && usage) {
        inputTokens += usage.input_tokens;
        outputTokens += usage.output_tokens;
      }
    }
    return { text: typeof last?.content === 'string' ? last.content : '', inputTokens, outputTokens };
  };
  return {
    peer: asPeer('LangGraph createReactAgent', plain, toolCall),
    report: { plain: () => report(plain()), toolCall: () => report(toolCall()) },
    toolRuns: () => toolRuns,
    modelCalls: () => model.calls,
  };
}

// ---------------------------------------------------------------------------------------------
// The floor: the minimal loop on the same LanguageModelV3 mock, no framework

/** What the floor's run returns: the least a caller would need. */
interface FloorResult {
  text: string;
  steps: number;
  usage: { inputTokens: number; outputTokens: number };
}

async function probedFloor(): Promise<Probed> {
  const model = createInstantModel('floor');
  let toolRuns = 0;
  const tools: Record<string, (args: { a: number; b: number }) => unknown> = {
    add: (args) => {
      toolRuns++;
      return add(args);
    },
  };
  const toolDefs = [
    {
      type: 'function' as const,
      name: 'add',
      description: ADD_DESCRIPTION,
      inputSchema: {
        type: 'object' as const,
        properties: { a: { type: 'number' as const }, b: { type: 'number' as const } },
        required: ['a', 'b'],
      },
    },
  ];
  const run = async (withTools: boolean): Promise<FloorResult> => {
    const prompt: LanguageModelV3Prompt = [
      { role: 'system', content: INSTRUCTIONS },
      { role: 'user', content: [{ type: 'text', text: SCRIPT.prompt }] },
    ];
    const usage = { inputTokens: 0, outputTokens: 0 };
    for (let step = 1; step <= MAX_STEPS; step++) {
      const res = await model.doGenerate(withTools ? { prompt, tools: toolDefs } : { prompt });
      usage.inputTokens += res.usage.inputTokens.total ?? 0;
      usage.outputTokens += res.usage.outputTokens.total ?? 0;
      let text = '';
      const calls: { toolCallId: string; toolName: string; input: string }[] = [];
      for (const part of res.content) {
        if (part.type === 'text') text += part.text;
        else if (part.type === 'tool-call') calls.push(part);
      }
      if (calls.length === 0) return { text, steps: step, usage };
      prompt.push({
        role: 'assistant',
        content: calls.map((c) => ({
          type: 'tool-call' as const,
          toolCallId: c.toolCallId,
          toolName: c.toolName,
          input: JSON.parse(c.input) as unknown,
        })),
      });
      const results = [];
      for (const c of calls) {
        const fn = tools[c.toolName];
        if (!fn) throw new Error(`unknown tool ${c.toolName}`);
        const value = await fn(JSON.parse(c.input) as { a: number; b: number });
        results.push({
          type: 'tool-result' as const,
          toolCallId: c.toolCallId,
          toolName: c.toolName,
          output: { type: 'json' as const, value: value as number },
        });
      }
      prompt.push({ role: 'tool', content: results });
    }
    throw new Error('floor: step limit reached');
  };
  const plain = () => run(false);
  const toolCall = () => run(true);
  const report = async (r: Promise<FloorResult>): Promise<RunReport> => {
    const res = await r;
    return { text: res.text, ...res.usage };
  };
  return {
    peer: asPeer('floor (hand-written loop)', plain, toolCall),
    report: { plain: () => report(plain()), toolCall: () => report(toolCall()) },
    toolRuns: () => toolRuns,
    modelCalls: () => model.stats.generateCalls + model.stats.streamCalls,
  };
}

// ---------------------------------------------------------------------------------------------
// exports

export const aiSdk: PeerFactory = async () => (await probedAiSdk()).peer;
export const mastra: PeerFactory = async () => (await probedMastra()).peer;
export const langGraph: PeerFactory = async () => (await probedLangGraph()).peer;
export const floor: PeerFactory = async () => (await probedFloor()).peer;

/** Every peer, floor first, in report order. */
export const PEERS: readonly { key: string; factory: PeerFactory }[] = [
  { key: 'floor', factory: floor },
  { key: 'ai-sdk', factory: aiSdk },
  { key: 'mastra', factory: mastra },
  { key: 'langgraph', factory: langGraph },
];

const PROBED: Record<string, () => Promise<Probed>> = {
  floor: probedFloor,
  'ai-sdk': probedAiSdk,
  mastra: probedMastra,
  langgraph: probedLangGraph,
};

/** Installed versions of the peer frameworks (read from bench/peers/node_modules). */
export async function peerVersions(): Promise<Record<string, string>> {
  const { createRequire } = await import('node:module');
  const { readFileSync } = await import('node:fs');
  const { dirname, join } = await import('node:path');
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const name of [
    'ai',
    '@ai-sdk/provider',
    '@mastra/core',
    '@langchain/langgraph',
    '@langchain/core',
    'zod',
  ]) {
    // package.json is not always exported: find it from the resolved entry point
    let dir = dirname(require.resolve(name));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === name) {
          out[name] = pkg.version ?? '?';
          break;
        }
      } catch {
        // no package.json here
      }
      const up = dirname(dir);
      if (up === dir) {
        out[name] = '?';
        break;
      }
      dir = up;
    }
  }
  return out;
}

function assertEqual(peer: string, what: string, actual: unknown, expected: unknown): void {
  if (actual !== expected) {
    throw new Error(`${peer}: ${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/**
 * Runs every peer's scenarios once (after a first, untimed run of each) and throws unless:
 * A made exactly one model call, ran no tool, and produced `SCRIPT.plainText` with one call's usage;
 * B made exactly two model calls, ran `add` exactly once, and produced `SCRIPT.finalText` with two
 * calls' usage. Returns the peer names checked.
 */
export async function checkPeers(): Promise<string[]> {
  const names: string[] = [];
  const { inputTokens, outputTokens } = SCRIPT.usage;
  for (const { key } of PEERS) {
    const probe = PROBED[key];
    if (!probe) throw new Error(`no probe for ${key}`);
    const p = await probe();
    const name = p.peer.name;
    for (let round = 0; round < 2; round++) {
      let tools = p.toolRuns();
      let calls = p.modelCalls();
      const a = await p.report.plain();
      assertEqual(name, 'A: text', a.text, SCRIPT.plainText);
      assertEqual(name, 'A: model calls', p.modelCalls() - calls, 1);
      assertEqual(name, 'A: tool runs', p.toolRuns() - tools, 0);
      assertEqual(name, 'A: input tokens', a.inputTokens, inputTokens);
      assertEqual(name, 'A: output tokens', a.outputTokens, outputTokens);

      tools = p.toolRuns();
      calls = p.modelCalls();
      const b = await p.report.toolCall();
      assertEqual(name, 'B: text', b.text, SCRIPT.finalText);
      assertEqual(name, 'B: model calls', p.modelCalls() - calls, 2);
      assertEqual(name, 'B: tool runs', p.toolRuns() - tools, 1);
      assertEqual(name, 'B: input tokens', b.inputTokens, 2 * inputTokens);
      assertEqual(name, 'B: output tokens', b.outputTokens, 2 * outputTokens);
    }
    // the measured functions (peer.plain / peer.toolCall) are the same calls, minus the read-back
    let tools = p.toolRuns();
    let calls = p.modelCalls();
    await p.peer.plain();
    assertEqual(name, 'A (measured fn): model calls', p.modelCalls() - calls, 1);
    assertEqual(name, 'A (measured fn): tool runs', p.toolRuns() - tools, 0);
    tools = p.toolRuns();
    calls = p.modelCalls();
    await p.peer.toolCall();
    assertEqual(name, 'B (measured fn): model calls', p.modelCalls() - calls, 2);
    assertEqual(name, 'B (measured fn): tool runs', p.toolRuns() - tools, 1);
    names.push(name);
  }
  return names;
}
