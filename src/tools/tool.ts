/**
 * The tool type: what a model may call, how its input is checked and how one call is run.
 * `defineTool` validates a spec once; `runTool` turns every outcome of a call (bad input, a throw,
 * a timeout, a cancelled run, an output that is not JSON) into a result the model can read,
 * because a misbehaving tool must cost one tool-error message, never the run.
 */
import type { JSONSchema7 } from '@ai-sdk/provider';
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import * as z from 'zod';
import { type Clock, systemClock, type TimerHandle } from '../core/clock.ts';
import { AgentPoolError, type ErrorCode, isAgentPoolError, validationError } from '../core/errors.ts';

/** What a tool's `execute` receives besides its input. */
export interface ToolContext {
  /** Aborted when the run is cancelled or the call times out; hand it to fetch and other I/O. */
  readonly signal: AbortSignal;
  readonly project: string;
  readonly agent: string;
  readonly runId: string;
  readonly threadId: string | null;
  /**
   * `runId:step:callIndex`: the same for a call made again, as when a run resumes on another node
   * after its node died before committing the step. A tool with side effects can pass it on (an
   * `Idempotency-Key` header, a unique column) so the effect happens once.
   */
  readonly idempotencyKey: string;
}

/** A zod schema (classic or mini). */
export type ZodSchema = z.core.$ZodType;

/** A tool's input schema: a JSON Schema (draft-07) object or a zod schema; its root must be an object. */
export type ToolInputSchema = JSONSchema7 | ZodSchema;

/** The input type `execute` receives for a schema: zod's output type, or a plain object for JSON Schema. */
export type ToolInput<S> = S extends ZodSchema ? z.core.output<S> : Record<string, unknown>;

/** What `defineTool` takes. */
export interface ToolSpec<S extends ToolInputSchema = ToolInputSchema, O = unknown> {
  /** Matches `^[a-zA-Z0-9_-]{1,64}$`, the names model providers accept. */
  name: string;
  /** Tells the model when and how to call the tool; non-empty. */
  description: string;
  inputSchema: S;
  execute(input: ToolInput<S>, ctx: ToolContext): O | Promise<O>;
  /**
   * True when `execute` bounds its calls itself and honours `ctx.signal` (an MCP tool: its server's
   * `timeoutMs`, enforced by the MCP client on the request); the
   * tool timeout (`tools.defaultTimeoutMs`) then sets no timer of its own. @default false
   */
  ownTimeout?: boolean;
}

/** A validated tool, made by {@link defineTool}. */
export interface Tool<I = unknown, O = unknown> {
  readonly name: string;
  readonly description: string;
  /** The schema as given (kept so a catalog can bind the tool to its own validator). */
  readonly inputSchema: ToolInputSchema;
  /** The JSON Schema sent to the model. */
  readonly jsonSchema: JSONSchema7;
  /** Validates input; throws AgentPoolError `TOOL_INPUT_INVALID` listing every problem. */
  parse(input: unknown): I;
  execute(input: I, ctx: ToolContext): O | Promise<O>;
  /** See {@link ToolSpec.ownTimeout}. */
  readonly ownTimeout: boolean;
}

/** One problem with a tool input: a JSON Pointer (`''` for the root) and what is wrong there. */
export interface ToolInputIssue {
  readonly path: string;
  readonly message: string;
}

/** A JSON value, what tool outputs are normalised to. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The outcome of {@link runTool}; an error is shown to the model as a tool-error result. */
export type ToolResult =
  | { readonly ok: true; readonly output: JsonValue }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } };

// Symbol.for, not Symbol(): a tool module that ends up with its own copy of this file must still
// produce tools the loader recognises.
const TOOL_BRAND: unique symbol = Symbol.for('agentpool.tool');
const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
const DRAFT_07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;
const MAX_ISSUES = 20;

/** An ajv instance configured for tool input schemas; a catalog owns one and binds its tools to it. */
export function createToolAjv(): Ajv {
  // allErrors: the model should learn every problem in one round trip, not one per retry.
  // strict: false + logger: false: provider-flavoured schemas carry unknown keywords and formats
  // ajv does not know; those are ignored rather than refused or logged on every compile.
  return new Ajv({ allErrors: true, strict: false, logger: false });
}

/** True when `value` is a tool made by {@link defineTool}. */
export function isTool(value: unknown): value is Tool {
  return (
    typeof value === 'object' && value !== null && (value as { [TOOL_BRAND]?: unknown })[TOOL_BRAND] === true
  );
}

/** Validates a tool spec (errors name the field) and returns the tool; JSON Schemas compile on first parse. */
export function defineTool<S extends ToolInputSchema, O = unknown>(
  spec: ToolSpec<S, O>,
): Tool<ToolInput<S>, O> {
  return buildTool(spec as unknown as ToolSpec, undefined) as Tool<ToolInput<S>, O>;
}

/**
 * The same tool validating JSON Schema input with `ajv`, compiled now so a broken schema fails at
 * activation rather than at the first call. Zod tools need no validator and are returned as they are.
 */
export function bindTool(tool: Tool, ajv: Ajv): Tool {
  if (!isTool(tool)) throw validationError('tool', 'must be made with defineTool');
  if (isZodSchema(tool.inputSchema)) return tool;
  return buildTool(
    {
      name: tool.name,
      description: tool.description,
      inputSchema: tool.inputSchema,
      execute: tool.execute,
      ownTimeout: tool.ownTimeout,
    },
    ajv,
  );
}

function buildTool(spec: ToolSpec, ajv: Ajv | undefined): Tool {
  if (typeof spec !== 'object' || spec === null) throw validationError('tool', 'must be an object');
  const { name, description, inputSchema, execute, ownTimeout = false } = spec;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw validationError(
      'tool.name',
      `must match ${NAME_PATTERN.source} (what model providers accept), got ${JSON.stringify(name)}`,
    );
  }
  if (typeof description !== 'string' || description.trim() === '') {
    throw validationError('tool.description', `must be a non-empty string (tool "${name}")`, { tool: name });
  }
  if (typeof execute !== 'function') {
    throw validationError('tool.execute', `must be a function (tool "${name}")`, { tool: name });
  }
  if (typeof ownTimeout !== 'boolean') {
    throw validationError('tool.ownTimeout', `must be a boolean when given (tool "${name}")`, { tool: name });
  }
  const zod = isZodSchema(inputSchema) ? inputSchema : undefined;
  const jsonSchema = zod ? zodToJsonSchema(name, zod) : copyJsonSchema(name, inputSchema);
  if (jsonSchema.type !== 'object') {
    throw validationError(
      'tool.inputSchema',
      `must describe an object (type "object"), as model providers require (tool "${name}")`,
      { tool: name },
    );
  }

  let parse: (input: unknown) => unknown;
  if (zod) {
    parse = (input) => {
      const result = z.safeParse(zod, input);
      if (result.success) return result.data;
      throw invalidInput(name, result.error.issues.map(zodIssue));
    };
  } else {
    // Compiled once per tool: now when bound to a catalog's ajv, else on first use with an ajv of its own.
    let validate = ajv ? compile(name, ajv, jsonSchema) : undefined;
    parse = (input) => {
      validate ??= compile(name, createToolAjv(), jsonSchema);
      if (validate(input)) return input;
      throw invalidInput(name, (validate.errors ?? []).map(ajvIssue));
    };
  }

  const tool = { name, description, inputSchema, jsonSchema, parse, execute, ownTimeout };
  Object.defineProperty(tool, TOOL_BRAND, { value: true });
  return Object.freeze(tool);
}

function isZodSchema(schema: unknown): schema is ZodSchema {
  return typeof schema === 'object' && schema !== null && '_zod' in schema;
}

function zodToJsonSchema(name: string, schema: ZodSchema): JSONSchema7 {
  try {
    // draft-07 and the input side: what the model must send, before zod's transforms and defaults.
    return z.toJSONSchema(schema, { target: 'draft-07', io: 'input' }) as JSONSchema7;
  } catch (err) {
    throw validationError(
      'tool.inputSchema',
      `cannot be expressed as JSON Schema (tool "${name}"): ${message(err)}`,
      {
        tool: name,
      },
    );
  }
}

function copyJsonSchema(name: string, schema: unknown): JSONSchema7 {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw validationError(
      'tool.inputSchema',
      `must be a JSON Schema object or a zod schema (tool "${name}")`,
      {
        tool: name,
      },
    );
  }
  const dialect = (schema as { $schema?: unknown }).$schema;
  if (dialect !== undefined && (typeof dialect !== 'string' || !DRAFT_07.test(dialect))) {
    throw validationError(
      'tool.inputSchema.$schema',
      `must be JSON Schema draft-07 when given, got ${JSON.stringify(dialect)} (tool "${name}")`,
      { tool: name },
    );
  }
  try {
    // A private copy: later changes to the caller's object must not change what was validated.
    return JSON.parse(JSON.stringify(schema)) as JSONSchema7;
  } catch (err) {
    throw validationError('tool.inputSchema', `must be plain JSON (tool "${name}"): ${message(err)}`, {
      tool: name,
    });
  }
}

function compile(name: string, ajv: Ajv, schema: JSONSchema7): ValidateFunction {
  try {
    return ajv.compile(schema as AnySchema);
  } catch (err) {
    throw validationError(
      'tool.inputSchema',
      `is not a valid JSON Schema (tool "${name}"): ${message(err)}`,
      {
        tool: name,
      },
    );
  }
}

function invalidInput(tool: string, issues: ToolInputIssue[]): AgentPoolError {
  const shown = issues.slice(0, MAX_ISSUES);
  const more = issues.length > shown.length ? `; and ${issues.length - shown.length} more` : '';
  const list = shown.map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('; ');
  return new AgentPoolError('TOOL_INPUT_INVALID', `invalid input for tool "${tool}": ${list}${more}`, {
    tool,
    issues: shown,
  });
}

function ajvIssue(error: ErrorObject): ToolInputIssue {
  const extra = error.params as { additionalProperty?: unknown };
  const suffix =
    error.keyword === 'additionalProperties' && typeof extra.additionalProperty === 'string'
      ? ` (${JSON.stringify(extra.additionalProperty)})`
      : '';
  return { path: error.instancePath, message: `${error.message ?? 'is invalid'}${suffix}` };
}

function zodIssue(issue: z.core.$ZodIssue): ToolInputIssue {
  const path = issue.path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
  return { path, message: issue.message };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs one tool call and never throws: parses the input, runs `execute` with a timeout
 * (`TOOL_TIMEOUT`) and the run's signal (`RUN_CANCELLED`) — either one also aborts the signal the
 * tool sees, so its I/O stops — and normalises the output to JSON. A thrown AgentPoolError keeps
 * its code; any other throw becomes `TOOL_FAILED` with the original message.
 * `timeoutMs` of 0 or Infinity means no timeout; a tool with `ownTimeout` gets no timer either.
 */
export function runTool(
  tool: Tool,
  input: unknown,
  ctx: ToolContext,
  timeoutMs: number,
  clock: Clock = systemClock,
): Promise<ToolResult> {
  if (ctx.signal.aborted) return Promise.resolve(cancelled(tool));
  let parsed: unknown;
  try {
    parsed = tool.parse(input);
  } catch (err) {
    return Promise.resolve(failed(err));
  }

  return new Promise<ToolResult>((resolve) => {
    const controller = new AbortController();
    let timer: TimerHandle | undefined;
    let settled = false;
    const finish = (result: ToolResult): void => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = (): void => {
      const result = cancelled(tool);
      controller.abort(ctx.signal.reason);
      finish(result);
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (!tool.ownTimeout && Number.isFinite(timeoutMs) && timeoutMs > 0) {
      timer = clock.setTimeout(() => {
        const err = new AgentPoolError(
          'TOOL_TIMEOUT',
          `tool "${tool.name}" timed out after ${timeoutMs} ms`,
          {
            tool: tool.name,
            timeoutMs,
          },
        );
        controller.abort(err);
        finish(failed(err));
      }, timeoutMs);
    }

    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(tool.execute(parsed, { ...ctx, signal: controller.signal }));
    } catch (err) {
      pending = Promise.reject(err);
    }
    // Both handlers stay attached after a timeout or cancel, so a late rejection is never unhandled.
    pending.then(
      (output) => finish(toJson(tool, output)),
      (err: unknown) => finish(failed(err)),
    );
  });
}

function cancelled(tool: Tool): ToolResult {
  return { ok: false, error: { code: 'RUN_CANCELLED', message: `run cancelled during tool "${tool.name}"` } };
}

function failed(err: unknown): ToolResult {
  if (isAgentPoolError(err)) return { ok: false, error: { code: err.code, message: err.message } };
  const text = message(err);
  return { ok: false, error: { code: 'TOOL_FAILED', message: text === '' ? 'tool failed' : text } };
}

function toJson(tool: Tool, output: unknown): ToolResult {
  try {
    // JSON.stringify would silently drop functions and turn NaN or a Map into null or {}; the model
    // would then see something the tool never meant, so those are refused instead.
    const text = JSON.stringify(output === undefined ? null : output, (_key, value: unknown) => {
      if (typeof value === 'function' || typeof value === 'symbol') throw new Error(`a ${typeof value}`);
      if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(String(value));
      if (value instanceof Map || value instanceof Set) throw new Error(`a ${value.constructor.name}`);
      return value;
    });
    return { ok: true, output: JSON.parse(text) as JsonValue };
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 'TOOL_FAILED',
        message: `tool "${tool.name}" returned output that is not JSON-serialisable: ${message(err)}`,
      },
    };
  }
}
