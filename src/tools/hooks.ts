/**
 * Run hooks and diagnostics channels: the five points of a run an embedder may observe (before
 * and after each model call, before and after each tool call, when the run finished), as
 * functions (`createAgentPool({ hooks })`, and an agent definition's `hooks` as module
 * references) and as `node:diagnostics_channel` channels.
 *
 * Hooks observe: what they return is ignored and a returned promise is not awaited, so a slow
 * hook never holds a run up. A hook that throws or rejects is reported (the pool logs it, emits
 * `hook.failed` and counts it) and the run goes on. Nothing is built for a point nobody hooks or
 * subscribes to: the run asks {@link HookSet.wants} first, which is two property reads.
 */
import { channel } from 'node:diagnostics_channel';
import { validationError } from '../core/errors.ts';
import { HOOK_NAMES, type HookName } from '../registry/definition.ts';
import type { RunRecord } from '../store/ports.ts';

export { HOOK_NAMES, type HookName } from '../registry/definition.ts';

/** The diagnostics channel of each hook point; a subscriber receives the hook's event object. */
export const DIAGNOSTICS_CHANNELS: Readonly<Record<HookName, string>> = Object.freeze({
  beforeModelCall: 'agentpool:model-call:start',
  afterModelCall: 'agentpool:model-call:end',
  beforeToolCall: 'agentpool:tool-call:start',
  afterToolCall: 'agentpool:tool-call:end',
  onRunFinished: 'agentpool:run:finished',
});

// Node's channel registry is process-wide by design; these are references into it, not state of ours.
const CHANNELS = Object.freeze(
  Object.fromEntries(HOOK_NAMES.map((name) => [name, channel(DIAGNOSTICS_CHANNELS[name])])) as Record<
    HookName,
    ReturnType<typeof channel>
  >,
);

/** Which run an event belongs to. */
export interface HookRun {
  readonly project: string;
  readonly agent: string;
  readonly runId: string;
  readonly threadId: string | null;
}

/** Before a model call (one step). */
export interface ModelCallStartEvent extends HookRun {
  readonly step: number;
  /** The agent's model (a fallback may answer: see the end event). */
  readonly model: string;
}

/** After a model call, successful or not. */
export interface ModelCallEndEvent extends HookRun {
  readonly step: number;
  /** The model that answered, or the agent's when the call failed. */
  readonly model: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly finishReason: string | null;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Tool calls the model asked for. */
  readonly toolCalls: number;
  readonly error?: { readonly code: string; readonly message: string };
}

/** Before one of the agent's tools runs. */
export interface ToolCallStartEvent extends HookRun {
  readonly step: number;
  readonly toolCallId: string;
  readonly toolName: string;
  /** `builtin`, `custom`, `module`, `mcp:<server>`. */
  readonly source: string;
  readonly input: unknown;
}

/**
 * After one of the agent's tools ran: succeeded, threw, timed out, or had its input refused by its
 * schema. (A call whose arguments were not JSON never reaches the tool, nor its hooks.)
 */
export interface ToolCallEndEvent extends ToolCallStartEvent {
  readonly ok: boolean;
  readonly durationMs: number;
  readonly output?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly timedOut: boolean;
}

/**
 * After a run's terminal record was committed (succeeded, failed, cancelled, interrupted), also
 * when it never reached a model (its activation failed: only the pool's hooks then).
 */
export interface RunFinishedEvent extends HookRun {
  readonly run: RunRecord;
}

/** The event each hook receives. */
export interface HookEvents {
  beforeModelCall: ModelCallStartEvent;
  afterModelCall: ModelCallEndEvent;
  beforeToolCall: ToolCallStartEvent;
  afterToolCall: ToolCallEndEvent;
  onRunFinished: RunFinishedEvent;
}

/** Functions called at the points of a run; each is optional, each only observes. */
export type RunHooks = { [K in HookName]?: (event: HookEvents[K]) => unknown };

/** A hook that threw or rejected, as the pool's event bus carries it. */
export interface HookEvent {
  readonly type: 'hook.failed';
  readonly hook: HookName;
  /** `pool` for `createAgentPool({ hooks })`, else the definition's module reference. */
  readonly origin: string;
  readonly project: string;
  readonly agent: string;
  readonly runId: string;
  readonly error: { readonly message: string };
  readonly at: number;
}

/** Told of each failing hook. */
export type HookFailureReporter = (hook: HookName, origin: string, err: unknown, run: HookRun) => void;

/** One hook function and where it came from. */
interface Bound {
  readonly fn: (event: never) => unknown;
  readonly origin: string;
}

/** Hooks from where they were declared: `pool`, or an agent's module reference. */
export interface HookLayer {
  readonly origin: string | ((hook: HookName) => string);
  readonly hooks: RunHooks;
}

/** The hooks one instance calls, pool's first, then its definition's; see the file header. */
export class HookSet {
  readonly #lists: Readonly<Record<HookName, readonly Bound[]>>;
  readonly #report: HookFailureReporter;

  constructor(layers: readonly HookLayer[], report: HookFailureReporter) {
    const lists = {} as Record<HookName, Bound[]>;
    for (const name of HOOK_NAMES) {
      lists[name] = [];
      for (const layer of layers) {
        const fn = layer.hooks[name];
        if (fn === undefined) continue;
        const origin = typeof layer.origin === 'string' ? layer.origin : layer.origin(name);
        lists[name].push({ fn: fn as Bound['fn'], origin });
      }
    }
    this.#lists = lists;
    this.#report = report;
  }

  /** Whether anything hooks or subscribes to `name`: build its event only then. */
  wants(name: HookName): boolean {
    return this.#lists[name].length > 0 || CHANNELS[name].hasSubscribers;
  }

  /** Calls the hooks of `name` in order and publishes on its channel; never throws. */
  emit<K extends HookName>(name: K, event: HookEvents[K]): void {
    for (const { fn, origin } of this.#lists[name]) {
      try {
        const returned = (fn as (e: HookEvents[K]) => unknown)(event);
        if (isThenable(returned)) {
          returned.then(undefined, (err: unknown) => this.#report(name, origin, err, event));
        }
      } catch (err) {
        this.#report(name, origin, err, event);
      }
    }
    const ch = CHANNELS[name];
    if (ch.hasSubscribers) ch.publish(event);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Checks a `hooks` option: an object of functions named by {@link HOOK_NAMES}. */
export function checkRunHooks(field: string, hooks: unknown): RunHooks {
  if (hooks === undefined) return {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) {
    throw validationError(field, 'must be an object of functions');
  }
  for (const [key, value] of Object.entries(hooks)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      throw validationError(`${field}.${key}`, `is not a hook (hooks: ${HOOK_NAMES.join(', ')})`);
    }
    if (value !== undefined && typeof value !== 'function') {
      throw validationError(`${field}.${key}`, 'must be a function');
    }
  }
  return hooks as RunHooks;
}
