/**
 * Settings a caller may give one run's model calls (sampling, an output cap, stop sequences,
 * structured output, tool choice), checked in one place so every error names its field. The
 * agent's definition stays the ceiling: a run never gets more output tokens than the agent's
 * `maxTokens`, and admission reserves budget with that same effective cap.
 */
import type { JSONSchema7, LanguageModelV3CallOptions, LanguageModelV3ToolChoice } from '@ai-sdk/provider';
import { validationError } from '../core/errors.ts';
import { intOption, isPlainObject, numberOption, rejectUnknownKeys } from '../core/options.ts';

/** The answer's format: free text, or JSON (matching `schema` when one is given). */
export type ResponseFormat =
  | { readonly type: 'text' }
  | {
      readonly type: 'json';
      /** The JSON Schema the answer must match; any JSON object when absent. */
      readonly schema?: JSONSchema7;
      /** A name for the schema, which some providers send along. */
      readonly name?: string;
      readonly description?: string;
    };

/** Settings of a run's model calls; each left out keeps the agent's value or the provider's default. */
export interface CallSettings {
  /** Sampling temperature, 0..2; replaces the agent's `temperature`. @default the agent's */
  readonly temperature?: number;
  /** Nucleus sampling, 0..1. @default the provider's */
  readonly topP?: number;
  /**
   * Output tokens per model call, 1..1,000,000; never more than the agent's `maxTokens` (the
   * smaller one applies). @default the agent's `maxTokens`
   */
  readonly maxOutputTokens?: number;
  /** At most 4 non-empty sequences that end the output. @default none */
  readonly stopSequences?: readonly string[];
  /** A seed for providers that sample deterministically with one. @default none */
  readonly seed?: number;
  /** -2..2. @default the provider's */
  readonly presencePenalty?: number;
  /** -2..2. @default the provider's */
  readonly frequencyPenalty?: number;
  /** The format of every model call's answer. @default text */
  readonly responseFormat?: ResponseFormat;
  /**
   * Which tool the model must (or must not) call. `none` holds for every model call of the run;
   * `required` and a named tool hold for the first call only, since forcing a tool call on every
   * step would keep an agent with its own tools from ever giving a final answer. @default auto
   */
  readonly toolChoice?: LanguageModelV3ToolChoice;
}

const FIELDS = [
  'temperature',
  'topP',
  'maxOutputTokens',
  'stopSequences',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'responseFormat',
  'toolChoice',
];
const MAX_STOP_SEQUENCES = 4;
const MAX_OUTPUT_TOKENS = 1_000_000;

/** Checks call settings (`settings.<field>` names a bad one) and returns them without undefined fields. */
export function resolveCallSettings(value: unknown, field = 'settings'): CallSettings {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw validationError(field, 'must be an object');
  rejectUnknownKeys(`${field}.`, value, FIELDS);
  const v = value as Record<string, unknown>;
  const num = (name: string, min: number, max: number) =>
    v[name] === undefined ? undefined : numberOption(`${field}.${name}`, v[name], 0, min, max);
  const out: { -readonly [K in keyof CallSettings]: CallSettings[K] } = {};
  const temperature = num('temperature', 0, 2);
  if (temperature !== undefined) out.temperature = temperature;
  const topP = num('topP', 0, 1);
  if (topP !== undefined) out.topP = topP;
  const presencePenalty = num('presencePenalty', -2, 2);
  if (presencePenalty !== undefined) out.presencePenalty = presencePenalty;
  const frequencyPenalty = num('frequencyPenalty', -2, 2);
  if (frequencyPenalty !== undefined) out.frequencyPenalty = frequencyPenalty;
  if (v['maxOutputTokens'] !== undefined)
    out.maxOutputTokens = intOption(
      `${field}.maxOutputTokens`,
      v['maxOutputTokens'],
      1,
      1,
      MAX_OUTPUT_TOKENS,
    );
  if (v['seed'] !== undefined)
    out.seed = intOption(`${field}.seed`, v['seed'], 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (v['stopSequences'] !== undefined)
    out.stopSequences = stopSequences(`${field}.stopSequences`, v['stopSequences']);
  if (v['responseFormat'] !== undefined)
    out.responseFormat = responseFormat(`${field}.responseFormat`, v['responseFormat']);
  if (v['toolChoice'] !== undefined) out.toolChoice = toolChoice(`${field}.toolChoice`, v['toolChoice']);
  return out;
}

function stopSequences(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_STOP_SEQUENCES) {
    throw validationError(field, `must be an array of at most ${MAX_STOP_SEQUENCES} strings`);
  }
  return value.map((s, i) => {
    if (typeof s !== 'string' || s === '')
      throw validationError(`${field}[${i}]`, 'must be a non-empty string');
    return s;
  });
}

function responseFormat(field: string, value: unknown): ResponseFormat {
  if (!isPlainObject(value)) throw validationError(field, 'must be an object');
  if (value['type'] === 'text') {
    rejectUnknownKeys(`${field}.`, value, ['type']);
    return { type: 'text' };
  }
  if (value['type'] !== 'json') throw validationError(`${field}.type`, 'must be "text" or "json"');
  rejectUnknownKeys(`${field}.`, value, ['type', 'schema', 'name', 'description']);
  const { schema, name, description } = value;
  if (schema !== undefined && !isPlainObject(schema))
    throw validationError(`${field}.schema`, 'must be a JSON Schema object');
  if (name !== undefined && (typeof name !== 'string' || name === ''))
    throw validationError(`${field}.name`, 'must be a non-empty string');
  if (description !== undefined && typeof description !== 'string')
    throw validationError(`${field}.description`, 'must be a string');
  return {
    type: 'json',
    ...(schema !== undefined && { schema: schema as JSONSchema7 }),
    ...(name !== undefined && { name }),
    ...(description !== undefined && { description }),
  };
}

function toolChoice(field: string, value: unknown): LanguageModelV3ToolChoice {
  if (!isPlainObject(value)) throw validationError(field, 'must be an object');
  const type = value['type'];
  if (type === 'auto' || type === 'none' || type === 'required') {
    rejectUnknownKeys(`${field}.`, value, ['type']);
    return { type };
  }
  if (type !== 'tool') throw validationError(`${field}.type`, 'must be "auto", "none", "required" or "tool"');
  rejectUnknownKeys(`${field}.`, value, ['type', 'toolName']);
  const toolName = value['toolName'];
  if (typeof toolName !== 'string' || toolName === '')
    throw validationError(`${field}.toolName`, 'must name a tool');
  return { type, toolName };
}

/**
 * The output cap of each model call: the smaller of the agent's `maxTokens` and the run's
 * `maxOutputTokens`; undefined when neither sets one (the provider's default, or, under a
 * budget, governance's default cap).
 */
export function effectiveMaxTokens(
  agentMaxTokens: number | undefined,
  settings: CallSettings,
): number | undefined {
  const asked = settings.maxOutputTokens;
  if (agentMaxTokens === undefined) return asked;
  return asked === undefined ? agentMaxTokens : Math.min(agentMaxTokens, asked);
}

/** Sets on `call` the options these settings give model call number `step` (1-based). */
export function applyCallSettings(
  call: LanguageModelV3CallOptions,
  settings: CallSettings,
  step: number,
): void {
  const choice = settings.toolChoice;
  // `none` keeps tools away for the whole run; forcing a call applies to the first step only.
  const applies = choice !== undefined && (choice.type === 'none' || step === 1);
  // Field by field: this runs for every model call, and spreads of optional fields allocate an object each.
  if (settings.topP !== undefined) call.topP = settings.topP;
  if (settings.stopSequences !== undefined) call.stopSequences = [...settings.stopSequences];
  if (settings.seed !== undefined) call.seed = settings.seed;
  if (settings.presencePenalty !== undefined) call.presencePenalty = settings.presencePenalty;
  if (settings.frequencyPenalty !== undefined) call.frequencyPenalty = settings.frequencyPenalty;
  if (settings.responseFormat !== undefined) call.responseFormat = settings.responseFormat;
  if (applies) call.toolChoice = choice;
}
