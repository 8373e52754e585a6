/**
 * The demo model (`demo/<anything>`): a deterministic stand-in for an LLM that needs no key and
 * no network, so a fresh install can run agents, tools and streams end to end. It owns only its
 * rule set; it is not a mock for tests (custom catalog providers are).
 */
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3Content,
  LanguageModelV3FinishReason,
  LanguageModelV3GenerateResult,
  LanguageModelV3Message,
  LanguageModelV3Prompt,
  LanguageModelV3StreamPart,
  LanguageModelV3StreamResult,
  LanguageModelV3ToolResultOutput,
  LanguageModelV3Usage,
} from '@ai-sdk/provider';

/** Every answer of the demo model starts with this, so nobody mistakes it for a real model. */
export const DEMO_PREFIX = '[demo] ';

/** What the demo model decided to do for one call. */
type Decision =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'tool-call'; readonly toolName: string; readonly input: Record<string, unknown> };

const ARITHMETIC_CUE = /\b(what(?:'s|\s+is|\s+are)|calculate|compute|evaluate|how\s+much\s+is|solve)\b/i;
const EXPRESSION_RUN = /[\d\s.+\-*/()]+/g;
const HAS_OPERATION = /\d\s*\)*\s*[-+*/]\s*\(*\s*-?\s*\d/;
const TIME_CUE =
  /\b(what\s+time|time\s+is\s+it|current\s+time|time\s+now|what(?:'s|\s+is)\s+the\s+(?:time|date)|today's\s+date)\b/i;
const MAX_ECHO = 500;

type ToolMessage = Extract<LanguageModelV3Message, { role: 'tool' }>;

function balanced(expr: string): boolean {
  let depth = 0;
  for (const ch of expr) {
    if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) return false;
  }
  return depth === 0;
}

/** The arithmetic expression a message asks about ("what is 17*23?" → "17*23"), if any. */
export function findArithmetic(message: string): string | undefined {
  for (const run of message.match(EXPRESSION_RUN) ?? []) {
    let expr = run.trim().replace(/[\s.]+$/, '');
    // "(what is 2+2)" leaves "2+2)": drop one unmatched outer parenthesis rather than give up.
    if (!balanced(expr)) expr = expr.replace(/^\(/, '').replace(/\)$/, '').trim();
    if (!HAS_OPERATION.test(expr) || !balanced(expr)) continue;
    // Digits in passing ("order 12-34 arrived") are not a question; demand a cue or a bare sum.
    const rest = message.replace(run, '').replace(/[\s?=!.]/g, '');
    if (ARITHMETIC_CUE.test(message) || rest === '') return expr;
  }
  return undefined;
}

function lastUserText(prompt: LanguageModelV3Prompt): string | undefined {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const m = prompt[i];
    if (m?.role === 'user') {
      return m.content
        .flatMap((p) => (p.type === 'text' ? [p.text] : []))
        .join('\n')
        .trim();
    }
  }
  return undefined;
}

function outputText(output: LanguageModelV3ToolResultOutput): { text: string; failed: boolean } {
  switch (output.type) {
    case 'text':
      return { text: output.value, failed: false };
    case 'error-text':
      return { text: output.value, failed: true };
    case 'json':
    case 'error-json': {
      let v = output.value;
      // Tools commonly wrap a scalar ({ result: 391 }, or { expression, result } like the builtin
      // calculator); the answer reads better without the wrapper.
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v);
        const key = keys.length === 1 ? keys[0] : keys.includes('result') ? 'result' : undefined;
        const only = key === undefined ? undefined : v[key];
        if (only !== null && only !== undefined && typeof only !== 'object') v = only;
      }
      return { text: typeof v === 'string' ? v : JSON.stringify(v), failed: output.type === 'error-json' };
    }
    case 'execution-denied':
      return { text: output.reason ?? 'execution was denied', failed: true };
    case 'content':
      return {
        text: output.value.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n'),
        failed: false,
      };
  }
}

function answerToolResult(prompt: LanguageModelV3Prompt, message: ToolMessage): string {
  const parts: string[] = [];
  for (const part of message.content) {
    if (part.type !== 'tool-result') continue;
    const { text, failed } = outputText(part.output);
    if (failed) {
      parts.push(`The ${part.toolName} tool failed: ${text}`);
      continue;
    }
    if (part.toolName === 'calculator') {
      const call = findToolCallInput(prompt, part.toolCallId);
      const expr = typeof call?.['expression'] === 'string' ? call['expression'] : undefined;
      parts.push(expr !== undefined ? `${expr} = ${text}` : `The result is ${text}.`);
    } else if (part.toolName === 'current_time') {
      parts.push(`The current time is ${text}.`);
    } else {
      parts.push(`The ${part.toolName} tool returned: ${text}`);
    }
  }
  return DEMO_PREFIX + (parts.length > 0 ? parts.join('\n') : 'The tool returned nothing.');
}

function findToolCallInput(
  prompt: LanguageModelV3Prompt,
  toolCallId: string,
): Record<string, unknown> | undefined {
  for (const m of prompt) {
    if (m.role !== 'assistant') continue;
    for (const p of m.content) {
      if (p.type === 'tool-call' && p.toolCallId === toolCallId) {
        // Prompts built by hand may carry the input as a JSON string rather than an object.
        const input: unknown = typeof p.input === 'string' ? safeParse(p.input) : p.input;
        return typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : undefined;
      }
    }
  }
  return undefined;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function decide(options: LanguageModelV3CallOptions): Decision {
  const { prompt } = options;
  const last = prompt[prompt.length - 1];
  if (last?.role === 'tool') return { kind: 'text', text: answerToolResult(prompt, last) };
  const said = lastUserText(prompt);
  if (said === undefined || said === '') {
    return { kind: 'text', text: `${DEMO_PREFIX}Hello! Send me a message and I will echo it.` };
  }
  const offered = new Set(
    options.toolChoice?.type === 'none' ? [] : (options.tools ?? []).map((t) => t.name),
  );
  const expression = findArithmetic(said);
  if (expression !== undefined && offered.has('calculator')) {
    return { kind: 'tool-call', toolName: 'calculator', input: { expression } };
  }
  if (TIME_CUE.test(said) && offered.has('current_time')) {
    return { kind: 'tool-call', toolName: 'current_time', input: {} };
  }
  const echo = said.length > MAX_ECHO ? `${said.slice(0, MAX_ECHO)}…` : said;
  return {
    kind: 'text',
    text:
      `${DEMO_PREFIX}You said: "${echo}". I am the demo model, so I only echo and call the ` +
      `calculator and current_time tools; a real model (e.g. openai/gpt-4o-mini) honours this agent's instructions.`,
  };
}

function promptChars(prompt: LanguageModelV3Prompt): number {
  let n = 0;
  for (const m of prompt) {
    if (m.role === 'system') {
      n += m.content.length;
      continue;
    }
    for (const p of m.content) {
      if (p.type === 'text' || p.type === 'reasoning') n += p.text.length;
      else if (p.type === 'tool-call') n += JSON.stringify(p.input ?? null).length;
      else if (p.type === 'tool-result') n += outputText(p.output).text.length;
    }
  }
  return n;
}

// Roughly four characters per token, as with English text on OpenAI tokenizers.
function usageOf(inputChars: number, outputChars: number): LanguageModelV3Usage {
  const input = Math.ceil(inputChars / 4);
  const output = Math.ceil(outputChars / 4);
  return {
    inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: output, text: output, reasoning: 0 },
  };
}

function countToolCalls(prompt: LanguageModelV3Prompt): number {
  let n = 0;
  for (const m of prompt) {
    if (m.role === 'assistant') n += m.content.filter((p) => p.type === 'tool-call').length;
  }
  return n;
}

// A few word-aligned pieces, so a stream looks like one without depending on any tokenizer.
function pieces(text: string, count = 4): string[] {
  const words = text.split(/(?<=\s)/);
  const size = Math.max(1, Math.ceil(words.length / count));
  const out: string[] = [];
  for (let i = 0; i < words.length; i += size) out.push(words.slice(i, i + size).join(''));
  return out;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  // Rejecting with the signal's own reason lets callers tell their cancellation from a failure.
  if (signal?.aborted === true) throw signal.reason;
}

/**
 * A deterministic demo `LanguageModelV3`: provider `demo`, any model id, no key, no network.
 * Known behaviour, checked in this order:
 * - last message is a tool result → answers from it: calculator → `[demo] 17*23 = 391`,
 *   current_time → `[demo] The current time is …`, other tools → `[demo] The <tool> tool returned: …`;
 * - last user message asks arithmetic (`what is 17*23`, digits, spaces, `+ - * /`, parentheses)
 *   and a `calculator` tool is offered → calls it with `{ "expression": "17*23" }`;
 * - asks the time and a `current_time` tool is offered → calls it with `{}`;
 * - otherwise → `[demo] You said: "…"`, noting that real models honour the agent's instructions.
 * `toolChoice: none` disables tool calls. Usage is estimated at ≈ 4 characters per token.
 * Both calls reject with `abortSignal.reason` once aborted.
 */
export class DemoLanguageModel implements LanguageModelV3 {
  readonly specificationVersion = 'v3';
  readonly provider = 'demo';
  readonly modelId: string;
  readonly supportedUrls: Record<string, RegExp[]> = {};

  constructor(modelId = 'assistant') {
    this.modelId = modelId;
  }

  /** Answers in one piece: text, or a tool call with JSON string input. */
  doGenerate(options: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
    try {
      throwIfAborted(options.abortSignal);
      const { content, finishReason, usage } = this.#answer(options);
      return Promise.resolve({
        content,
        finishReason,
        usage,
        warnings: [],
        response: { id: `demo-${options.prompt.length}`, modelId: this.modelId },
      });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Streams the same answer: text in a few deltas, tool calls as input events then a `tool-call` part. */
  doStream(options: LanguageModelV3CallOptions): Promise<LanguageModelV3StreamResult> {
    const signal = options.abortSignal;
    try {
      throwIfAborted(signal);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const { content, finishReason, usage } = this.#answer(options);
    const parts: LanguageModelV3StreamPart[] = [
      { type: 'stream-start', warnings: [] },
      { type: 'response-metadata', id: `demo-${options.prompt.length}`, modelId: this.modelId },
    ];
    for (const c of content) {
      if (c.type === 'text') {
        const id = `text-${parts.length}`;
        parts.push({ type: 'text-start', id });
        for (const delta of pieces(c.text)) parts.push({ type: 'text-delta', id, delta });
        parts.push({ type: 'text-end', id });
      } else if (c.type === 'tool-call') {
        parts.push({ type: 'tool-input-start', id: c.toolCallId, toolName: c.toolName });
        parts.push({ type: 'tool-input-delta', id: c.toolCallId, delta: c.input });
        parts.push({ type: 'tool-input-end', id: c.toolCallId });
        parts.push(c);
      }
    }
    parts.push({ type: 'finish', finishReason, usage });
    let next = 0;
    let onAbort: (() => void) | undefined;
    const detach = (): void => {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    };
    // Pull-based, so a consumer that stops reading stops the stream mid-way; the abort listener
    // errors it at once, even with parts already queued, and is removed when the stream ends so a
    // long-lived signal does not collect listeners.
    const stream = new ReadableStream<LanguageModelV3StreamPart>({
      start(controller) {
        onAbort = () => controller.error(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
      },
      pull(controller) {
        const part = parts[next++];
        if (part !== undefined) return controller.enqueue(part);
        detach();
        controller.close();
      },
      cancel: detach,
    });
    return Promise.resolve({ stream });
  }

  #answer(options: LanguageModelV3CallOptions): {
    content: LanguageModelV3Content[];
    finishReason: LanguageModelV3FinishReason;
    usage: LanguageModelV3Usage;
  } {
    const decision = decide(options);
    const inputChars = promptChars(options.prompt);
    if (decision.kind === 'text') {
      return {
        content: [{ type: 'text', text: decision.text }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: usageOf(inputChars, decision.text.length),
      };
    }
    const input = JSON.stringify(decision.input);
    // Numbered by the calls already in the prompt: deterministic, yet unique within a conversation.
    const toolCallId = `demo_call_${countToolCalls(options.prompt) + 1}`;
    return {
      content: [{ type: 'tool-call', toolCallId, toolName: decision.toolName, input }],
      finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
      usage: usageOf(inputChars, decision.toolName.length + input.length),
    };
  }
}
