/**
 * The instant mock model shared by every contender of the per-run overhead benchmark.
 *
 * One script, three renderings:
 *   - `SCRIPT`: the scripted conversation (prompt, tool call, answers, token usage per call);
 *   - `createInstantModel()`: an AI SDK `LanguageModelV3` (spec "v3", @ai-sdk/provider@3) whose
 *     `doGenerate` and `doStream` answer at once from `SCRIPT`: used by the AI SDK, Mastra, the
 *     hand-written floor, and meant for agentpool's own runner too;
 *   - the LangChain chat model in peers.ts renders the same script as `AIMessage`s.
 *
 * The model is stateless: what it answers depends only on the request, so one instance serves any
 * number of runs (sequential or concurrent) without being reset:
 *   - no tools offered                          → `SCRIPT.plainText`            (scenario A)
 *   - tools offered, no tool result in prompt   → one call of `add` {a: 2, b: 3} (scenario B, call 1)
 *   - tools offered, last message a tool result → `SCRIPT.finalText`            (scenario B, call 2)
 * No timers, no network, no I/O: every promise it returns is already settled when returned.
 *
 * Only type imports: this file has no runtime dependency, so it loads without bench/peers' install.
 */
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3Content,
  LanguageModelV3GenerateResult,
  LanguageModelV3StreamPart,
  LanguageModelV3StreamResult,
  LanguageModelV3Usage,
} from '@ai-sdk/provider';

/** The scripted conversation, the same for every contender. */
export const SCRIPT = {
  /** The user's input in both scenarios. */
  prompt: 'What is 2 + 3?',
  /** Scenario A's answer (a model call offered no tools). */
  plainText: '2 + 3 = 5.',
  /** Scenario B, model call 1: one call of the `add` tool. */
  toolCall: { id: 'call_1', name: 'add', args: { a: 2, b: 3 } },
  /** Scenario B, model call 2 (after the tool result): the answer. */
  finalText: 'The sum is 5.',
  /** What the `add` tool returns for the scripted call. */
  toolResult: 5,
  /** Token usage reported by every model call. */
  usage: { inputTokens: 12, outputTokens: 6 },
} as const;

/** The scripted `add` tool as agentpool's `defineTool` takes it (each tree under test defines it with its own). */
export const ADD_TOOL = {
  name: 'add',
  description: 'Adds two numbers',
  inputSchema: {
    type: 'object' as const,
    properties: { a: { type: 'number' as const }, b: { type: 'number' as const } },
    required: ['a', 'b'],
  },
  execute: (input: Record<string, unknown>): number => (input['a'] as number) + (input['b'] as number),
};

/** What one scripted model call says: text, or a tool call (arguments as an object). */
export type ScriptedReply =
  | { kind: 'text'; text: string }
  | { kind: 'tool-call'; id: string; name: string; args: { a: number; b: number } };

/**
 * The script as a function: the reply to a request, given whether tools were offered and whether
 * the conversation's last message is a tool result.
 */
export function scriptedReply(toolsOffered: boolean, afterToolResult: boolean): ScriptedReply {
  if (!toolsOffered) return { kind: 'text', text: SCRIPT.plainText };
  if (afterToolResult) return { kind: 'text', text: SCRIPT.finalText };
  const c = SCRIPT.toolCall;
  return { kind: 'tool-call', id: c.id, name: c.name, args: { a: c.args.a, b: c.args.b } };
}

function v3Usage(): LanguageModelV3Usage {
  const { inputTokens, outputTokens } = SCRIPT.usage;
  return {
    inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: outputTokens, text: outputTokens, reasoning: 0 },
  };
}

function replyFor(options: LanguageModelV3CallOptions): ScriptedReply {
  const toolsOffered = (options.tools?.length ?? 0) > 0;
  const last = options.prompt[options.prompt.length - 1];
  return scriptedReply(toolsOffered, last?.role === 'tool');
}

/** Counters an instant model keeps (for the self-check; they cost one increment per call). */
export interface InstantModelStats {
  generateCalls: number;
  streamCalls: number;
}

/** A `LanguageModelV3` that answers from `SCRIPT` at once, through `doGenerate` or `doStream`. */
export function createInstantModel(
  modelId = 'instant',
): LanguageModelV3 & { readonly stats: InstantModelStats } {
  const stats: InstantModelStats = { generateCalls: 0, streamCalls: 0 };
  return {
    specificationVersion: 'v3',
    provider: 'mock',
    modelId,
    supportedUrls: {},
    stats,
    doGenerate(options: LanguageModelV3CallOptions): PromiseLike<LanguageModelV3GenerateResult> {
      stats.generateCalls++;
      const reply = replyFor(options);
      const content: LanguageModelV3Content[] =
        reply.kind === 'text'
          ? [{ type: 'text', text: reply.text }]
          : [
              {
                type: 'tool-call',
                toolCallId: reply.id,
                toolName: reply.name,
                input: JSON.stringify(reply.args),
              },
            ];
      return Promise.resolve({
        content,
        finishReason:
          reply.kind === 'text'
            ? { unified: 'stop', raw: 'stop' }
            : { unified: 'tool-calls', raw: 'tool_calls' },
        usage: v3Usage(),
        warnings: [],
      });
    },
    doStream(options: LanguageModelV3CallOptions): PromiseLike<LanguageModelV3StreamResult> {
      stats.streamCalls++;
      const reply = replyFor(options);
      const parts: LanguageModelV3StreamPart[] = [{ type: 'stream-start', warnings: [] }];
      if (reply.kind === 'text') {
        parts.push(
          { type: 'text-start', id: 't0' },
          { type: 'text-delta', id: 't0', delta: reply.text },
          { type: 'text-end', id: 't0' },
          { type: 'finish', usage: v3Usage(), finishReason: { unified: 'stop', raw: 'stop' } },
        );
      } else {
        const input = JSON.stringify(reply.args);
        parts.push(
          { type: 'tool-input-start', id: reply.id, toolName: reply.name },
          { type: 'tool-input-delta', id: reply.id, delta: input },
          { type: 'tool-input-end', id: reply.id },
          { type: 'tool-call', toolCallId: reply.id, toolName: reply.name, input },
          { type: 'finish', usage: v3Usage(), finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
        );
      }
      const stream = new ReadableStream<LanguageModelV3StreamPart>({
        start(controller) {
          for (const p of parts) controller.enqueue(p);
          controller.close();
        },
      });
      return Promise.resolve({ stream });
    },
  };
}
