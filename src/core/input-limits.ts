/**
 * Every cap on data users hand agentpool, in one place, and the checks that apply them: the
 * registry (agent definitions), threads, runs and projects all call these instead of keeping
 * their own numbers, so a field is never capped in one place and unbounded in another (run
 * metadata once was: 600 runs of 1 MB took the server from 159 MiB to 2.4 GiB). The HTTP server
 * also caps bodies (`bodyLimit`) and their nesting (`http.maxJsonDepth`) before any of this runs;
 * these checks are what protects library users, who have no HTTP edge.
 *
 * Every refusal is `VALIDATION_FAILED` naming the field.
 */
import { isAgentPoolError, validationError } from './errors.ts';
import { isPlainObject } from './options.ts';

/** The caps on user-supplied data. Sizes of text are in characters (UTF-16 code units), of JSON in UTF-8 bytes. */
export const INPUT_LIMITS = Object.freeze({
  /** Slugs: agent names, project ids, label keys. */
  nameLength: 64,
  /** Free text that names something for people: a project's name, an API key's name. */
  displayNameLength: 200,
  /** An agent's system instructions. */
  instructionsLength: 100_000,
  /** A run's input: the user's message. */
  runInputChars: 100_000,
  /** `provider/model-id`. */
  modelRefLength: 200,
  /** One tool reference of an agent. */
  toolRefLength: 256,
  /** Tools of one agent. */
  tools: 128,
  /** Fallback models of one agent. */
  fallbacks: 8,
  /** Labels of one agent. */
  labels: 32,
  /** One label's value. */
  labelValueLength: 128,
  /** The metadata of an agent, a thread, a run or a project, as JSON. */
  metadataBytes: 16_384,
  /** How deep metadata may nest objects and arrays (the metadata object itself is level 1). */
  metadataDepth: 32,
  /** An agent's output token cap per model call. */
  maxTokens: 1_000_000,
  /** An agent's model calls per run. */
  maxSteps: 100,
  /** An ephemeral agent's or a thread's time to live: ten years. */
  ttlSeconds: 10 * 365 * 24 * 3600,
  /** Items of one page of a listing. */
  pageSize: 1000,
  /** An id a caller hands back (a thread's, a run's): ours are about 30 characters. */
  idLength: 128,
  /** Projects one feature flag or rollout lists (allowlist, denylist). */
  flagProjects: 1000,
} as const);

/**
 * Refuses a value nesting objects and arrays deeper than `maxDepth`, or holding more than
 * `maxValues` values in all. It walks with its own stack, so a hostile value (5,000 levels, or a
 * cycle) is refused instead of overflowing the call stack of `JSON.stringify`; the value count
 * keeps a value that shares sub-objects (a DAG that serialises exponentially) from running long.
 */
export function checkJsonShape(field: string, value: unknown, maxDepth: number, maxValues: number): void {
  const pending: [unknown, number][] = [[value, 1]];
  let values = 0;
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, depth] = next;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > maxDepth) {
      throw validationError(field, `nests objects and arrays deeper than ${maxDepth} levels`, { maxDepth });
    }
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    values += children.length;
    if (values > maxValues) {
      throw validationError(field, `holds more than ${maxValues} values`, { maxValues });
    }
    for (const child of children) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
}

/**
 * Checks free-form metadata (a JSON object of at most {@link INPUT_LIMITS}`.metadataBytes` bytes,
 * nesting at most `.metadataDepth` levels) and returns a plain-JSON copy of it, so nothing the
 * caller holds is kept; `{}` when undefined. `stringify` decides the copy's key order
 * (agent specs keep theirs canonical).
 */
export function parseMetadata(
  field: string,
  value: unknown,
  stringify: (value: unknown) => string = JSON.stringify,
): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw validationError(field, 'must be a JSON object');
  const maxBytes = INPUT_LIMITS.metadataBytes;
  let json: string;
  try {
    // Every value serialises to at least one byte, so more values than bytes cannot fit.
    checkJsonShape(field, value, INPUT_LIMITS.metadataDepth, maxBytes);
    json = stringify(value);
  } catch (err) {
    if (isAgentPoolError(err)) throw err;
    throw validationError(field, 'must be JSON-serialisable');
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) {
    throw validationError(field, `must serialise to at most ${maxBytes} bytes, got ${bytes}`, {
      maxBytes,
      bytes,
    });
  }
  return JSON.parse(json) as Record<string, unknown>;
}

/** A string of at most `max` characters, or `fallback` when undefined. */
export function parseText(field: string, value: unknown, max: number, fallback = ''): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw validationError(field, `must be a string, got ${typeof value}`);
  if (value.length > max) {
    throw validationError(field, `must be at most ${max} characters, got ${value.length}`, { max });
  }
  return value;
}

/** A run's input: a string of 1 to {@link INPUT_LIMITS}`.runInputChars` characters. */
export function parseRunInput(value: unknown): string {
  const max = INPUT_LIMITS.runInputChars;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw validationError('input', `must be a string of 1 to ${max} characters`, { max });
  }
  return value;
}

/** An id a caller hands back (`thr_…`, `run_…`): a non-empty string of at most {@link INPUT_LIMITS}`.idLength` characters. */
export function parseId(field: string, value: unknown): string {
  const max = INPUT_LIMITS.idLength;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw validationError(field, `must be an id of 1 to ${max} characters`, { max });
  }
  return value;
}
