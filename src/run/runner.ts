/**
 * The run loop: model call → the tool calls it asked for, in parallel, each with a timeout →
 * next model call … until a final answer or `maxSteps`. We call the provider model directly
 * (`doStream`) rather than through `generateText`, so every step is ours to commit: a finished
 * step stores its messages and the run record in one transaction, and stream events carry each
 * text delta, tool call and result as it happens. A tool that throws becomes a tool-error result
 * the model sees; a failing model call, a cancel or `maxSteps` end the run with a coded error
 * (on a thread, with a note answering its user turn, unanswered-note.ts). A step is charged at
 * most its cap, whatever the provider reports.
 */
import type {
  LanguageModelV3CallOptions,
  LanguageModelV3FunctionTool,
  LanguageModelV3StreamPart,
  LanguageModelV3ToolCallPart,
} from '@ai-sdk/provider';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { roundUsd } from '../core/money.ts';
import type { RunAdmission } from '../governance/governance.ts';
import type { PriceTable } from '../models/pricing.ts';
import type { ModelGuards, ModelTarget, PartSink, UsageExceededCap } from '../models/resilient-model.ts';
import type { AgentSpec } from '../registry/definition.ts';
import type { NewMessage, RunRecord } from '../store/ports.ts';
import type { ToolOrigin } from '../tools/catalog.ts';
import { HookSet } from '../tools/hooks.ts';
import type { ToolFigures } from '../tools/tool-figures.ts';
import type { Tool } from '../tools/tool.ts';
import { applyCallSettings, type CallSettings, effectiveMaxTokens } from './call-settings.ts';
import { type ClientTool, clientToolDefinitions } from './conversation.ts';
import {
  answerOpenCalls,
  type AssistantContent,
  type PromptMessage,
  type ToolContent,
  toPrompt,
} from './messages.ts';
import { IGNORE_RUNS, type RunObserver } from './observer.ts';
import type { RunWrites } from './run-writes.ts';
import type { RunEventInput, RunEventStream } from './stream.ts';
import {
  hookRun,
  InvalidToolInput,
  parseToolInput,
  roundMs,
  type StepTools,
  ToolCalls,
} from './tool-calls.ts';
import { unansweredNote } from './unanswered-note.ts';

/** What the runner needs from the rest of the pool. */
export interface RunnerDeps {
  /** Every model call goes through them: breaker, retries, timeout, bulkhead, rate limits, fallbacks. */
  guards: ModelGuards;
  prices: PriceTable;
  clock: Clock;
  /** Per tool call. */
  toolTimeoutMs: number;
  /** Told how long each model call took. @default ignores */
  observer?: RunObserver;
  /** The pool's hooks, for runs whose instance has no hook set of its own. @default none */
  hooks?: HookSet;
  /** Where tools come from (their `source`) and where their calls are counted. @default unlabelled, uncounted */
  tools?: { readonly figures: ToolFigures; originOf(tool: Tool): ToolOrigin | undefined };
}

/** One run to execute: a `running` record, the resolved agent, and the conversation so far. */
export interface RunInput {
  run: RunRecord;
  spec: AgentSpec;
  /** The agent's model, then its fallbacks. */
  models: readonly ModelTarget[];
  tools: readonly Tool[];
  /**
   * The thread's recent messages, ending with the run's input; for a stateless run, the caller's
   * earlier turns and the input.
   */
  history: readonly PromptMessage[];
  signal: AbortSignal;
  events: RunEventStream;
  /** The run's hold on its project's quotas and budgets: reserved before each model call, settled after. */
  admission?: RunAdmission;
  /** System text sent after the agent's instructions. @default '' */
  instructions?: string;
  /** Functions the caller runs: a model call asking for any of them ends the run. @default [] */
  clientTools?: readonly ClientTool[];
  /** Settings of every model call. @default {} */
  settings?: CallSettings;
  /** Where each finished step and the terminal record are written. */
  writes: RunWrites;
  /** The instance's hooks (the pool's and its definition's), resolved at activation. @default the pool's */
  hooks?: HookSet | undefined;
}

/** One model call's answer, gathered from its stream part by part (text deltas are published as they come). */
class StepResult implements PartSink {
  /** The model that answered (a fallback when the agent's own could not). */
  model: string;
  text = '';
  /** The calls the model made; a shared empty array until the first (most steps make none). */
  toolCalls: LanguageModelV3ToolCallPart[] = NO_TOOL_CALLS;
  finishReason = 'unknown';
  inputTokens = 0;
  outputTokens = 0;
  /** Set when the provider reported more than the call's cap allowed (see Runner.#account). */
  exceeded: UsageExceededCap | undefined;
  readonly #step: number;
  readonly #events: RunEventStream;
  readonly #signal: AbortSignal;

  constructor(model: string, step: number, events: RunEventStream, signal: AbortSignal) {
    this.model = model;
    this.#step = step;
    this.#events = events;
    this.#signal = signal;
  }

  part(part: LanguageModelV3StreamPart): void {
    switch (part.type) {
      case 'text-delta':
        this.text += part.delta;
        this.#events.publish({ type: 'text.delta', step: this.#step, delta: part.delta });
        break;
      case 'tool-call':
        if (this.toolCalls === NO_TOOL_CALLS) this.toolCalls = [];
        this.toolCalls.push({
          type: 'tool-call',
          toolCallId: part.toolCallId,
          toolName: part.toolName,
          input: parseToolInput(part.input),
        });
        break;
      case 'finish':
        this.finishReason = part.finishReason.unified;
        this.inputTokens = part.usage.inputTokens.total ?? 0;
        this.outputTokens = part.usage.outputTokens.total ?? 0;
        break;
      case 'error':
        throw modelError(part.error, this.#signal);
    }
  }
}

/** Executes runs; never throws for a run's own failure: it returns the terminal, committed record. */
export class Runner {
  readonly #deps: RunnerDeps;
  readonly #observer: RunObserver;
  readonly #toolCalls: ToolCalls;
  readonly #hooks: HookSet;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    this.#observer = deps.observer ?? IGNORE_RUNS;
    this.#hooks = deps.hooks ?? new HookSet([], () => undefined);
    this.#toolCalls = new ToolCalls({ toolTimeoutMs: deps.toolTimeoutMs, tools: deps.tools });
  }

  async execute(input: RunInput): Promise<RunRecord> {
    const { spec, tools, signal, events } = input;
    const stateless = input.run.threadId === null;
    let run = input.run;
    const instructions =
      input.instructions === undefined || input.instructions === ''
        ? spec.instructions
        : [spec.instructions, input.instructions];
    const prompt = answerOpenCalls(toPrompt(instructions, input.history));
    const clientTools = input.clientTools ?? [];
    const agentTools = this.#toolCalls.toolsOf(tools);
    const toolDefs =
      clientTools.length === 0
        ? agentTools.definitions
        : [...agentTools.definitions, ...clientToolDefinitions(clientTools)];
    const clientNames: ReadonlySet<string> =
      clientTools.length === 0 ? NO_NAMES : new Set(clientTools.map((t) => t.name));
    const hooks = input.hooks ?? this.#hooks;
    const callContext = { project: run.project, agent: run.agentName, runId: run.id };
    try {
      // A run resumed after its node died goes on after its last committed step.
      for (let step = run.steps + 1; step <= spec.maxSteps; step++) {
        // The most this call may be charged: its worst case, reserved before it is made.
        const worstUsd =
          input.admission?.budgeted === true
            ? await input.admission.reserveStep(promptBytes(prompt, toolDefs))
            : undefined;
        if (hooks.wants('beforeModelCall')) {
          hooks.emit('beforeModelCall', { ...hookRun(run), step, model: spec.model });
        }
        const started = performance.now();
        // The model call inline, not in a method of its own: an async frame and an await less a step.
        const result = new StepResult(spec.model, step, events, signal);
        try {
          const opened = await this.#deps.guards.stream(
            input.models,
            this.#callOptions(spec, prompt, toolDefs, step, input),
            callContext,
          );
          result.model = opened.ref;
          // One promise for the whole stream, where a read loop cost one per part.
          await opened.stream.drain(result);
        } catch (thrown) {
          const err = modelError(thrown, signal);
          const seconds = (performance.now() - started) / 1000;
          this.#observer.modelCall(spec.model, seconds, false);
          if (hooks.wants('afterModelCall')) {
            const { code, message } = describeError(err, signal.aborted);
            hooks.emit('afterModelCall', {
              ...hookRun(run),
              step,
              model: spec.model,
              ok: false,
              durationMs: seconds * 1000,
              finishReason: null,
              inputTokens: 0,
              outputTokens: 0,
              toolCalls: 0,
              error: { code, message },
            });
          }
          throw err;
        }
        const seconds = (performance.now() - started) / 1000;
        this.#observer.modelCall(result.model, seconds, true);
        if (hooks.wants('afterModelCall')) {
          hooks.emit('afterModelCall', {
            ...hookRun(run),
            step,
            model: result.model,
            ok: true,
            durationMs: seconds * 1000,
            finishReason: result.finishReason,
            inputTokens: result.inputTokens,
            outputTokens: result.outputTokens,
            toolCalls: result.toolCalls.length,
          });
        }
        const { client: clientCalls, server: serverCalls } =
          result.toolCalls.length === 0 ? NO_CALLS : splitCalls(result.toolCalls, clientNames, stateless);
        const stops = clientCalls.length > 0;
        // Starts with the text part, if any: an array of one, where a push would grow an empty one to 16 places.
        const assistant: AssistantContent = result.text === '' ? [] : [{ type: 'text', text: result.text }];
        for (const call of stops && stateless ? clientCalls : result.toolCalls) assistant.push(call);
        const messages: NewMessage[] = [this.#message('assistant', assistant, run.id)];
        const cost = run.cost;
        // A final answer: the step's record is the run's terminal one, built once.
        const answered = result.toolCalls.length === 0;
        run = this.#account(
          run,
          result,
          outputCap(spec, input.settings ?? {}, input.admission),
          worstUsd,
          answered,
        );
        input.admission?.settleStep(run.cost - cost, result.inputTokens + result.outputTokens);
        const exceeded = result.exceeded;
        if (exceeded !== undefined) {
          this.#deps.guards.usageExceededCap({
            project: run.project,
            agent: run.agentName,
            runId: run.id,
            ...exceeded,
          });
        }
        let stepTools: StepTools | undefined;
        if (serverCalls.length > 0) {
          stepTools = { calls: 0, errors: 0, timeouts: 0, durationMs: 0 };
          const toolContent = await this.#toolCalls.call(
            serverCalls,
            agentTools,
            step,
            input,
            clientNames,
            hooks,
            stepTools,
          );
          messages.push(this.#message('tool', toolContent, run.id));
        }
        for (const call of clientCalls) {
          events.publish({
            type: 'tool.call',
            step,
            toolCallId: call.toolCallId,
            toolName: call.toolName,
            input: call.input,
            client: true,
          });
        }
        const done = stops || answered;
        if (stops) {
          // A run stopped at client calls has no final answer: `output` stays null.
          run = { ...run, status: 'succeeded', output: null, finishedAt: this.#deps.clock.now() };
        }
        await input.writes.commit(run, stateless ? [] : messages);
        const finished: RunEventInput = {
          type: 'step.finished',
          step,
          model: result.model,
          finishReason: result.finishReason,
          inputTokens: result.inputTokens,
          outputTokens: result.outputTokens,
        };
        if (exceeded !== undefined) finished.usageExceededCap = exceeded;
        if (stepTools !== undefined) {
          stepTools.durationMs = roundMs(stepTools.durationMs);
          finished.tools = stepTools;
        }
        events.publish(finished);
        if (done) {
          events.publish({ type: 'run.finished', run });
          return run;
        }
        for (const m of messages) prompt.push(...toPrompt('', [m]));
        signal.throwIfAborted();
      }
      throw new AgentPoolError(
        'MAX_STEPS_REACHED',
        `the agent made ${spec.maxSteps} model calls without a final answer`,
        {
          maxSteps: spec.maxSteps,
        },
      );
    } catch (err) {
      return this.fail(run, err, signal, events, input.writes);
    }
  }

  /**
   * Tells the `onRunFinished` hooks (the instance's, else the pool's) and channel of a run whose
   * terminal record was committed, whether or not it reached a model (an activation that failed,
   * a refusal where a background run was to run).
   */
  finished(run: RunRecord, hooks: HookSet = this.#hooks): void {
    if (hooks.wants('onRunFinished')) hooks.emit('onRunFinished', { ...hookRun(run), run });
  }

  /** The options of a step's model call. */
  #callOptions(
    spec: AgentSpec,
    prompt: ReturnType<typeof toPrompt>,
    tools: LanguageModelV3FunctionTool[],
    step: number,
    input: RunInput,
  ): LanguageModelV3CallOptions {
    const settings = input.settings ?? {};
    const temperature = settings.temperature ?? spec.temperature;
    const maxOutputTokens = outputCap(spec, settings, input.admission);
    // Set field by field: spreads of optional fields allocated an object each, on every call.
    const call: LanguageModelV3CallOptions = { prompt, abortSignal: input.signal };
    applyCallSettings(call, settings, step);
    if (tools.length > 0) call.tools = tools;
    if (temperature !== undefined) call.temperature = temperature;
    if (maxOutputTokens !== undefined) call.maxOutputTokens = maxOutputTokens;
    return call;
  }

  /**
   * Adds a step's tokens and cost, priced for the model that answered it, which the record then
   * names. The tokens are what the provider reported; the cost is at most the call's cap: output
   * beyond `capTokens` is not counted, nor more than `worstUsd`, the worst case reserved for the
   * call. So a provider that reports more than it was allowed to produce cannot spend a budget
   * past its limit, and the record's cost stays what the budget was charged (a restart reads the
   * budget back from the records). Such a step is described in `step.exceeded`, and the run's
   * `metadata.usageExceededCap` sums them. The cost is rounded to a nano-dollar, so a run of
   * several steps reads `0.0135`, not `0.013499999999999998`. A step that `answered` finishes the
   * record (succeeded, its text the output) in the same copy.
   */
  #account(
    run: RunRecord,
    step: StepResult,
    capTokens: number | undefined,
    worstUsd: number | undefined,
    answered: boolean,
  ): RunRecord {
    const prices = this.#deps.prices;
    const reportedUsd = prices.costOf(step.model, step).usd;
    const overCap = capTokens !== undefined && step.outputTokens > capTokens;
    let usd = overCap
      ? prices.costOf(step.model, { inputTokens: step.inputTokens, outputTokens: capTokens }).usd
      : reportedUsd;
    if (worstUsd !== undefined && usd > worstUsd) usd = worstUsd;
    const next: RunRecord = {
      ...run,
      model: step.model,
      steps: run.steps + 1,
      inputTokens: run.inputTokens + step.inputTokens,
      outputTokens: run.outputTokens + step.outputTokens,
      cost: roundUsd(run.cost + usd),
      status: answered ? 'succeeded' : run.status,
      output: answered ? step.text : run.output,
      finishedAt: answered ? this.#deps.clock.now() : run.finishedAt,
    };
    if (!overCap && usd === reportedUsd) return next;
    const exceeded: UsageExceededCap = {
      model: step.model,
      capTokens: capTokens ?? null,
      reportedInputTokens: step.inputTokens,
      reportedOutputTokens: step.outputTokens,
      reportedUsd,
      chargedUsd: usd,
    };
    step.exceeded = exceeded;
    const sum = run.metadata['usageExceededCap'] as ExceededSum | undefined;
    const total: ExceededSum = {
      calls: (sum?.calls ?? 0) + 1,
      reportedOutputTokens: (sum?.reportedOutputTokens ?? 0) + step.outputTokens,
      reportedUsd: (sum?.reportedUsd ?? 0) + reportedUsd,
      chargedUsd: (sum?.chargedUsd ?? 0) + usd,
    };
    return { ...next, metadata: { ...next.metadata, usageExceededCap: total } };
  }

  #message(role: 'assistant' | 'tool', content: AssistantContent | ToolContent, runId: string): NewMessage {
    const now = this.#deps.clock.now();
    return { id: newId('msg', now), role, content, runId, createdAt: now };
  }

  /**
   * Ends a run that could not finish: the error (the abort reason when cancelled or interrupted)
   * decides the status, the terminal record is committed, then `run.failed` is published.
   */
  async fail(
    run: RunRecord,
    err: unknown,
    signal: AbortSignal,
    events: RunEventStream,
    writes: RunWrites,
  ): Promise<RunRecord> {
    // Handed over to another node (a cluster's background run, its node closing): nothing ends.
    if (signal.aborted && isAgentPoolError(signal.reason) && signal.reason.details['handedOver'] === true) {
      return run;
    }
    const error = describeError(signal.aborted ? signal.reason : err, signal.aborted);
    const status =
      error.code === 'RUN_INTERRUPTED'
        ? 'interrupted'
        : error.code === 'RUN_CANCELLED'
          ? 'cancelled'
          : 'failed';
    const now = this.#deps.clock.now();
    const failed: RunRecord = { ...run, status, error, finishedAt: now };
    // A thread run whose input was committed (it started) answers it with a note, in the same
    // commit, so the thread stays a valid conversation for the next run.
    const note =
      run.threadId !== null && run.startedAt !== null
        ? [unansweredNote(newId('msg', now), run.id, error.code, now)]
        : [];
    try {
      await writes.commit(failed, note);
    } catch {
      // The record stays `running` in the store (start-up recovery marks it interrupted), or, never
      // written, the run leaves nothing.
    }
    const cause = signal.aborted ? signal.reason : err;
    const details =
      isAgentPoolError(cause) && Object.keys(cause.details).length > 0 ? cause.details : undefined;
    events.publish({
      type: 'run.failed',
      run: failed,
      error: details === undefined ? error : { ...error, details },
    });
    return failed;
  }
}

/** What {@link Runner} sums in a run's `metadata.usageExceededCap`. */
interface ExceededSum {
  calls: number;
  reportedOutputTokens: number;
  reportedUsd: number;
  chargedUsd: number;
}

/**
 * The output cap of a model call: the agent's `maxTokens` or the run's own smaller one, or under a
 * budget the governance default (sent to the provider, so the worst case reserved holds); none otherwise.
 */
function outputCap(
  spec: AgentSpec,
  settings: CallSettings,
  admission: RunAdmission | undefined,
): number | undefined {
  return (
    effectiveMaxTokens(spec.maxTokens, settings) ??
    (admission?.budgeted === true ? admission.maxOutputTokens : undefined)
  );
}

const NO_NAMES: ReadonlySet<string> = new Set();
const NO_TOOL_CALLS: LanguageModelV3ToolCallPart[] = Object.freeze([]) as never;

/** A step's tool calls: the caller's (`client`), which end the run, and the agent's to run (`server`). */
interface SplitCalls {
  readonly client: readonly LanguageModelV3ToolCallPart[];
  readonly server: readonly LanguageModelV3ToolCallPart[];
}

const NO_CALLS: SplitCalls = Object.freeze({ client: Object.freeze([]), server: Object.freeze([]) });

/**
 * Calls of the caller's functions end the run: they are its result. A call whose arguments are
 * not JSON is not handed out; the model is told, as for the agent's own tools. The agent's calls
 * of a step that stops: a thread keeps their results for the next turn; a stateless run drops
 * them unrun, since the caller's copy of the conversation could not carry their results and the
 * model asks again once it has the client's results.
 */
function splitCalls(
  calls: readonly LanguageModelV3ToolCallPart[],
  clientNames: ReadonlySet<string>,
  stateless: boolean,
): SplitCalls {
  const client = calls.filter((c) => clientNames.has(c.toolName) && !(c.input instanceof InvalidToolInput));
  const server = client.length > 0 && stateless ? [] : calls.filter((c) => !client.includes(c));
  return { client, server };
}

/**
 * UTF-8 bytes of everything a model call sends, as JSON: an upper bound of its input tokens for a
 * byte-level tokenizer, which is what budget reservations need.
 */
export function promptBytes(prompt: unknown, tools: unknown): number {
  return Buffer.byteLength(JSON.stringify(prompt)) + Buffer.byteLength(JSON.stringify(tools));
}

function modelError(err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason;
  if (isAgentPoolError(err)) return err;
  const e = err as { message?: unknown; statusCode?: unknown; name?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return new AgentPoolError(
    'MODEL_CALL_FAILED',
    `the model call failed${status === undefined ? '' : ` with HTTP ${status}`}: ${String(e.message ?? err)}`,
    { ...(status !== undefined && { providerStatus: status }) },
    { cause: err },
  );
}

/** A run's error as its record keeps it. */
export function describeError(err: unknown, aborted: boolean): { code: string; message: string } {
  if (isAgentPoolError(err)) return { code: err.code, message: err.message };
  if (aborted) return { code: 'RUN_CANCELLED', message: 'the run was cancelled' };
  return { code: 'INTERNAL_ERROR', message: err instanceof Error ? err.message : String(err) };
}
