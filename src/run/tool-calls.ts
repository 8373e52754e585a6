/**
 * The agent's tool calls of one step: each runs with the catalog's timeout, is counted in the
 * tool's figures (calls, errors, timeouts, latency, per project) and in its step's summary, is
 * told to the hooks and diagnostics channels before and after, and ends as a `tool.result` event
 * with its duration and source. The tool list of an instance is bound once (definitions for the
 * model, each tool's source and figures series), so a call pays a Map lookup, not a resolution.
 */
import type { LanguageModelV3FunctionTool, LanguageModelV3ToolCallPart } from '@ai-sdk/provider';
import type { RunRecord } from '../store/ports.ts';
import type { ToolOrigin } from '../tools/catalog.ts';
import type { HookRun, HookSet } from '../tools/hooks.ts';
import type { ToolFigures, ToolSeries } from '../tools/tool-figures.ts';
import { runTool, type Tool, type ToolResult } from '../tools/tool.ts';
import type { ToolContent } from './messages.ts';
import type { RunInput } from './runner.ts';
import type { RunEventInput } from './stream.ts';

/** What tool calls need from the pool. */
export interface ToolCallDeps {
  /** Per tool call. */
  readonly toolTimeoutMs: number;
  /** Where tools come from (their `source`) and where their calls are counted. @default unlabelled, uncounted */
  readonly tools?:
    { readonly figures: ToolFigures; originOf(tool: Tool): ToolOrigin | undefined } | undefined;
}

/** Runs the agent's tool calls; see the file header. */
export class ToolCalls {
  readonly #deps: ToolCallDeps;
  readonly #agentTools = new WeakMap<readonly Tool[], AgentTools>();

  constructor(deps: ToolCallDeps) {
    this.#deps = deps;
  }

  /** The agent's tools as runs use them, worked out once per tool list (a live instance hands every run the same list). */
  toolsOf(tools: readonly Tool[]): AgentTools {
    let known = this.#agentTools.get(tools);
    if (known === undefined) {
      const catalog = this.#deps.tools;
      const bound = new Map<string, BoundTool>();
      for (const tool of tools) {
        const source = catalog?.originOf(tool)?.source ?? 'custom';
        bound.set(tool.name, { tool, source, series: catalog?.figures.seriesFor(tool.name, source) });
      }
      known = { definitions: toolDefinitions(tools), byName: new Map(tools.map((t) => [t.name, t])), bound };
      this.#agentTools.set(tools, known);
    }
    return known;
  }

  /** Runs a step's calls of the agent's tools, in parallel; publishes their events; never throws. */
  async call(
    calls: readonly LanguageModelV3ToolCallPart[],
    agentTools: AgentTools,
    step: number,
    input: RunInput,
    /** The caller's functions: a call of one reaching here had arguments that were not JSON. */
    clientNames: ReadonlySet<string>,
    hooks: HookSet,
    /** Summed into the step's `step.finished` event. */
    stepTools: StepTools,
  ): Promise<ToolContent> {
    const { run, signal, events } = input;
    const { byName, bound } = agentTools;
    const figures = this.#deps.tools?.figures;
    const ctx = {
      signal,
      project: run.project,
      agent: run.agentName,
      runId: run.id,
      threadId: run.threadId,
    };
    return Promise.all(
      calls.map(async (call, callIndex): Promise<ToolContent[number]> => {
        events.publish({
          type: 'tool.call',
          step,
          toolCallId: call.toolCallId,
          toolName: call.toolName,
          input: call.input,
        });
        const own = bound.get(call.toolName);
        const known = own !== undefined || clientNames.has(call.toolName);
        const ids = { toolCallId: call.toolCallId, toolName: call.toolName };
        if (own === undefined || (known && call.input instanceof InvalidToolInput)) {
          const error =
            known && call.input instanceof InvalidToolInput
              ? { code: 'TOOL_INPUT_INVALID', message: call.input.message }
              : {
                  code: 'TOOL_NOT_FOUND',
                  message: `no tool named ${JSON.stringify(call.toolName)}; available: ${[...byName.keys()].join(', ') || 'none'}`,
                };
          const refused: RunEventInput = {
            type: 'tool.result',
            step,
            ...ids,
            ok: false,
            error,
            durationMs: 0,
          };
          if (own !== undefined) {
            // Arguments that were not JSON: counted as a failed call of the tool, which never ran.
            this.#counted(own, run.project, 'error', 0, stepTools, figures);
            refused.source = own.source;
          }
          events.publish(refused);
          return errorResult(ids, error);
        }
        const hookEvent =
          hooks.wants('beforeToolCall') || hooks.wants('afterToolCall')
            ? { ...hookRun(run), step, ...ids, source: own.source, input: call.input }
            : undefined;
        if (hookEvent !== undefined) hooks.emit('beforeToolCall', hookEvent);
        const started = performance.now();
        const outcome: ToolResult = await runTool(
          own.tool,
          call.input,
          { ...ctx, idempotencyKey: `${run.id}:${step}:${callIndex}` },
          this.#deps.toolTimeoutMs,
        );
        const durationMs = roundMs(performance.now() - started);
        const timedOut = !outcome.ok && outcome.error.code === 'TOOL_TIMEOUT';
        this.#counted(
          own,
          run.project,
          outcome.ok ? 'ok' : timedOut ? 'timeout' : 'error',
          durationMs,
          stepTools,
          figures,
        );
        if (hookEvent !== undefined) {
          hooks.emit('afterToolCall', {
            ...hookEvent,
            ok: outcome.ok,
            durationMs,
            timedOut,
            ...(outcome.ok ? { output: outcome.output } : { error: outcome.error }),
          });
        }
        const source = own.source;
        if (outcome.ok) {
          events.publish({
            type: 'tool.result',
            step,
            ...ids,
            ok: true,
            output: outcome.output,
            durationMs,
            source,
          });
          return {
            type: 'tool-result',
            ...ids,
            output: { type: 'json', value: (outcome.output ?? null) as never },
          };
        }
        const failed: RunEventInput = {
          type: 'tool.result',
          step,
          ...ids,
          ok: false,
          error: outcome.error,
          durationMs,
          source,
        };
        if (timedOut) failed.timedOut = true;
        events.publish(failed);
        return errorResult(ids, outcome.error);
      }),
    );
  }

  /** Counts one call in the tool's figures and in its step's summary. */
  #counted(
    own: BoundTool,
    project: string,
    outcome: 'ok' | 'error' | 'timeout',
    durationMs: number,
    stepTools: StepTools,
    figures: ToolFigures | undefined,
  ): void {
    stepTools.calls++;
    stepTools.durationMs += durationMs;
    if (outcome !== 'ok') {
      stepTools.errors++;
      if (outcome === 'timeout') stepTools.timeouts++;
    }
    if (own.series !== undefined) figures?.record(project, own.series, outcome, durationMs);
  }
}

/** An agent's tools as a run uses them: their definitions for the model, and by name. */
export interface AgentTools {
  readonly definitions: LanguageModelV3FunctionTool[];
  readonly byName: ReadonlyMap<string, Tool>;
  /** By name: the tool with its source and the series its calls are counted in. */
  readonly bound: ReadonlyMap<string, BoundTool>;
}

/** A tool bound once per tool list to its source label and figures. */
interface BoundTool {
  readonly tool: Tool;
  readonly source: string;
  readonly series: ToolSeries | undefined;
}

/** The tool calls of one step, as `step.finished` sums them; `errors` includes `timeouts`. */
export interface StepTools {
  calls: number;
  errors: number;
  timeouts: number;
  durationMs: number;
}

/** The run fields every hook event carries. */
export function hookRun(run: RunRecord): HookRun {
  return { project: run.project, agent: run.agentName, runId: run.id, threadId: run.threadId };
}

/** Milliseconds to the microsecond. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function errorResult(
  ids: { toolCallId: string; toolName: string },
  error: { code: string; message: string },
): ToolContent[number] {
  return {
    type: 'tool-result',
    ...ids,
    output: { type: 'error-text', value: `${error.code}: ${error.message}` },
  };
}

/** The tools as the model is told of them. */
export function toolDefinitions(tools: readonly Tool[]): LanguageModelV3FunctionTool[] {
  return tools.map((t) => ({
    type: 'function',
    name: t.name,
    description: t.description,
    inputSchema: t.jsonSchema,
  }));
}

/** A tool call whose arguments were not valid JSON; the model is told so. */
export class InvalidToolInput {
  readonly message: string;
  constructor(raw: string) {
    this.message = `the tool input is not valid JSON: ${raw.slice(0, 200)}`;
  }
}

export function parseToolInput(raw: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return new InvalidToolInput(raw);
  }
}
