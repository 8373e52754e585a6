/**
 * The builtin tools every agent may reference by name: `current_time`, `calculator` and
 * `fetch_url`. A factory builds them from options (allowlist, limits, injected clock and fetch), so
 * two catalogs in one process can run with different policies and tests need no network or sleep.
 */
import * as z from 'zod';
import { type Clock, systemClock } from '../core/clock.ts';
import { AgentPoolError, validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import { defineTool, type Tool } from './tool.ts';

/** Options of the builtin tools. */
export interface BuiltinToolOptions {
  /**
   * Hosts `fetch_url` may reach: an exact host (`api.example.com`, `127.0.0.1`) or `*.example.com`
   * for its subdomains (not `example.com` itself). Any port is allowed. @default [] (refuses every URL)
   */
  fetchAllowlist?: readonly string[];
  /** How long one `fetch_url` call may take, redirects and body included. @default 10000 */
  fetchTimeoutMs?: number;
  /** Response bytes kept; the rest is cut off and `truncated` is true. @default 102400 (100 KB) */
  fetchMaxBytes?: number;
  /** Redirects followed, each one checked against the allowlist. @default 5 */
  fetchMaxRedirects?: number;
  /** Time source for `current_time` and the fetch timeout. @default systemClock */
  clock?: Clock;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** {@link BuiltinToolOptions} with every default applied. */
export type ResolvedBuiltinToolOptions = Required<BuiltinToolOptions>;

/** The names of the builtin tools. */
export const BUILTIN_TOOL_NAMES = ['current_time', 'calculator', 'fetch_url'] as const;

/** The name of a builtin tool. */
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number];

/** The builtin tools by name. */
export type BuiltinTools = Readonly<Record<BuiltinToolName, Tool>>;

const HOST_PATTERN = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$/;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveBuiltinToolOptions(
  input: BuiltinToolOptions = {},
  prefix = 'tools.builtins.',
): ResolvedBuiltinToolOptions {
  const allowlist = input.fetchAllowlist ?? [];
  if (!Array.isArray(allowlist))
    throw validationError(`${prefix}fetchAllowlist`, 'must be an array of hosts');
  const fetchAllowlist = allowlist.map((entry: unknown, i) => {
    const host = typeof entry === 'string' ? entry.trim().toLowerCase().replace(/\.$/, '') : '';
    if (!HOST_PATTERN.test(host)) {
      throw validationError(
        `${prefix}fetchAllowlist[${i}]`,
        `must be a host name like "api.example.com" or "*.example.com" (no scheme, port or path), got ${JSON.stringify(entry)}`,
      );
    }
    return host;
  });
  const clock = input.clock ?? systemClock;
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function') {
    throw validationError(`${prefix}clock`, 'must have now() and setTimeout()');
  }
  const fetchImpl = input.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw validationError(`${prefix}fetch`, 'must be a function');
  return {
    fetchAllowlist,
    fetchTimeoutMs: intOption(`${prefix}fetchTimeoutMs`, input.fetchTimeoutMs, 10_000),
    fetchMaxBytes: intOption(`${prefix}fetchMaxBytes`, input.fetchMaxBytes, 100 * 1024),
    fetchMaxRedirects: intOption(`${prefix}fetchMaxRedirects`, input.fetchMaxRedirects, 5, 0, 20),
    clock,
    fetch: fetchImpl,
  };
}

/** Builds the builtin tools for one set of options. */
export function createBuiltinTools(options: BuiltinToolOptions = {}): BuiltinTools {
  const resolved = resolveBuiltinToolOptions(options);
  return Object.freeze({
    current_time: currentTimeTool(resolved.clock),
    calculator: calculatorTool(),
    fetch_url: fetchUrlTool(resolved),
  });
}

function inputError(tool: string, message: string, details: Record<string, unknown> = {}): AgentPoolError {
  return new AgentPoolError('TOOL_INPUT_INVALID', message, { tool, ...details });
}

// ---- current_time ----------------------------------------------------------------------------

function currentTimeTool(clock: Clock): Tool {
  return defineTool({
    name: 'current_time',
    description:
      'Returns the current date and time as ISO 8601 with the UTC offset of a time zone, and the weekday. ' +
      'Defaults to UTC.',
    inputSchema: z.object({
      timezone: z
        .string()
        .max(64)
        .optional()
        .describe('IANA time zone name, e.g. "Europe/Paris"; default "UTC"'),
    }),
    execute: ({ timezone }) => {
      let format: Intl.DateTimeFormat;
      try {
        format = new Intl.DateTimeFormat('en-US', {
          timeZone: timezone ?? 'UTC',
          hourCycle: 'h23',
          year: 'numeric',
          month: '2-digit',
          day: '2-digit',
          hour: '2-digit',
          minute: '2-digit',
          second: '2-digit',
          weekday: 'long',
          timeZoneName: 'longOffset',
        });
      } catch {
        throw inputError(
          'current_time',
          `unknown time zone ${JSON.stringify(timezone)}: use an IANA name such as "Europe/Paris" or "America/New_York"`,
          { timezone },
        );
      }
      const now = clock.now();
      const part = (type: Intl.DateTimeFormatPartTypes): string =>
        format.formatToParts(now).find((p) => p.type === type)?.value ?? '';
      // longOffset reads "GMT+05:30", or "GMT" for a zero offset.
      const utcOffset = part('timeZoneName').replace('GMT', '') || '+00:00';
      const ms = String(((now % 1000) + 1000) % 1000).padStart(3, '0');
      return {
        iso: `${part('year')}-${part('month')}-${part('day')}T${part('hour')}:${part('minute')}:${part('second')}.${ms}${utcOffset}`,
        // As asked for: ICU would canonicalise some names to older ones (Asia/Kolkata → Asia/Calcutta).
        timezone: timezone ?? 'UTC',
        utcOffset,
        weekday: part('weekday'),
      };
    },
  });
}

// ---- calculator ------------------------------------------------------------------------------

const MAX_EXPRESSION_LENGTH = 1000;
const MAX_NESTING = 64;

type Token = { kind: 'number'; value: number; at: number } | { kind: 'op'; op: string; at: number };

/**
 * Evaluates arithmetic: numbers (decimals, `1e3`), `+ - * / %`, `^` or `**` (right-associative,
 * binding tighter than unary minus, so `-2^2` is -4), parentheses and unary minus. No eval.
 * Results are rounded to 15 significant digits so `0.1 + 0.2` reads 0.3. Throws
 * `TOOL_INPUT_INVALID` naming the character position of a problem.
 */
export function evaluateArithmetic(expression: string): number {
  const fail = (message: string, at?: number): never => {
    throw inputError(
      'calculator',
      at === undefined ? message : `${message} at character ${at + 1} of ${JSON.stringify(expression)}`,
      { expression, ...(at === undefined ? {} : { position: at + 1 }) },
    );
  };
  if (expression.length > MAX_EXPRESSION_LENGTH)
    fail(`expression is longer than ${MAX_EXPRESSION_LENGTH} characters`);

  const tokens: Token[] = [];
  const numberPattern = /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/y;
  for (let i = 0; i < expression.length;) {
    const c = expression[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    numberPattern.lastIndex = i;
    const m = numberPattern.exec(expression);
    if (m) {
      tokens.push({ kind: 'number', value: Number(m[0]), at: i });
      i += m[0].length;
    } else if (expression.startsWith('**', i)) {
      tokens.push({ kind: 'op', op: '^', at: i });
      i += 2;
    } else if ('+-*/%^()'.includes(c)) {
      tokens.push({ kind: 'op', op: c, at: i });
      i++;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`, i);
    }
  }
  if (tokens.length === 0) fail('expression is empty');

  let pos = 0;
  let depth = 0;
  const peekOp = (): string | undefined => {
    const t = tokens[pos];
    return t?.kind === 'op' ? t.op : undefined;
  };
  const checked = (value: number, at: number): number => {
    if (Number.isNaN(value)) fail('result is not a real number', at);
    if (!Number.isFinite(value)) fail('result is too large', at);
    return value;
  };

  const expr = (): number => {
    let left = term();
    for (let op = peekOp(); op === '+' || op === '-'; op = peekOp()) {
      const at = (tokens[pos++] as Token).at;
      const right = term();
      left = checked(op === '+' ? left + right : left - right, at);
    }
    return left;
  };
  const term = (): number => {
    let left = unary();
    for (let op = peekOp(); op === '*' || op === '/' || op === '%'; op = peekOp()) {
      const at = (tokens[pos++] as Token).at;
      const right = unary();
      if (op !== '*' && right === 0) fail('division by zero', at);
      left = checked(op === '*' ? left * right : op === '/' ? left / right : left % right, at);
    }
    return left;
  };
  const unary = (): number => {
    const op = peekOp();
    if (op === '-' || op === '+') {
      pos++;
      if (++depth > MAX_NESTING) fail(`expression nests deeper than ${MAX_NESTING} levels`);
      const value = unary();
      depth--;
      return op === '-' ? -value : value;
    }
    return power();
  };
  const power = (): number => {
    const base = primary();
    if (peekOp() !== '^') return base;
    const at = (tokens[pos++] as Token).at;
    // The exponent may carry its own sign (2^-1) and is itself a power, which makes ^ right-associative.
    return checked(base ** unary(), at);
  };
  const primary = (): number => {
    const t = tokens[pos];
    if (t === undefined) return fail('expression ends too early: expected a number or "("');
    if (t.kind === 'number') {
      pos++;
      return t.value;
    }
    if (t.op !== '(') return fail(`expected a number or "(" but found ${JSON.stringify(t.op)}`, t.at);
    pos++;
    if (++depth > MAX_NESTING) fail(`expression nests deeper than ${MAX_NESTING} levels`, t.at);
    const value = expr();
    depth--;
    if (peekOp() !== ')') fail('missing ")" to close the "("', t.at);
    pos++;
    return value;
  };

  const result = expr();
  const rest = tokens[pos];
  if (rest !== undefined) {
    fail(`unexpected ${rest.kind === 'number' ? 'number' : JSON.stringify(rest.op)}`, rest.at);
  }
  // Hides binary floating-point noise (0.1 + 0.2) that would only confuse a model.
  return Number(result.toPrecision(15)) + 0;
}

function calculatorTool(): Tool {
  return defineTool({
    name: 'calculator',
    description:
      'Evaluates an arithmetic expression exactly as written: numbers, + - * / %, ^ or ** for powers, ' +
      'parentheses and unary minus. Use it instead of doing arithmetic in your head.',
    inputSchema: z.object({
      expression: z.string().min(1).max(MAX_EXPRESSION_LENGTH).describe('e.g. "(2 + 3) * 4 ^ 2 / -5"'),
    }),
    execute: ({ expression }) => ({ expression, result: evaluateArithmetic(expression) }),
  });
}

// ---- fetch_url -------------------------------------------------------------------------------

/** True when `host` (as `URL.hostname` gives it) is allowed by the resolved allowlist. */
export function isHostAllowed(host: string, allowlist: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allowlist.some((entry) => (entry.startsWith('*.') ? h.endsWith(entry.slice(1)) : h === entry));
}

function fetchUrlTool(options: ResolvedBuiltinToolOptions): Tool {
  const { fetchAllowlist: allowlist, fetchTimeoutMs: timeoutMs, fetchMaxBytes: maxBytes, clock } = options;
  const checkUrl = (raw: string, base?: URL): URL => {
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      throw inputError('fetch_url', `${JSON.stringify(raw)} is not a valid absolute URL`, { url: raw });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw inputError('fetch_url', `only http and https URLs can be fetched, got ${url.protocol}`, {
        url: url.href,
      });
    }
    if (!isHostAllowed(url.hostname, allowlist)) {
      const allowed = allowlist.length === 0 ? 'no hosts are allowed' : `allowed: ${allowlist.join(', ')}`;
      throw inputError(
        'fetch_url',
        `refused: host ${JSON.stringify(url.hostname)} is not in the fetch allowlist (${allowed})`,
        { url: url.href, host: url.hostname },
      );
    }
    return url;
  };

  return defineTool({
    name: 'fetch_url',
    description:
      `Fetches a URL with HTTP GET and returns the status, content type and response text ` +
      `(cut to ${maxBytes} bytes). Only allowlisted hosts can be reached.`,
    inputSchema: z.object({ url: z.string().min(1).max(4096).describe('absolute http(s) URL') }),
    execute: async ({ url: raw }, ctx) => {
      let url = checkUrl(raw);
      const controller = new AbortController();
      const timeout = new AgentPoolError('TOOL_TIMEOUT', `fetch_url timed out after ${timeoutMs} ms`, {
        tool: 'fetch_url',
        timeoutMs,
      });
      const timer = clock.setTimeout(() => controller.abort(timeout), timeoutMs);
      const onAbort = (): void => controller.abort(ctx.signal.reason);
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
      try {
        for (let redirects = 0; ; redirects++) {
          // Redirects are followed by hand so every hop is checked against the allowlist.
          const res = await options.fetch(url, {
            method: 'GET',
            redirect: 'manual',
            signal: controller.signal,
          });
          const location = res.headers.get('location');
          if (!REDIRECT_STATUSES.has(res.status) || location === null) {
            const { body, truncated } = await readText(res, maxBytes);
            return {
              url: url.href,
              status: res.status,
              contentType: res.headers.get('content-type'),
              body,
              truncated,
            };
          }
          await res.body?.cancel();
          if (redirects >= options.fetchMaxRedirects) {
            throw new Error(`fetch_url stopped after ${options.fetchMaxRedirects} redirects at ${url.href}`);
          }
          url = checkUrl(location, url);
        }
      } catch (err) {
        if (controller.signal.aborted) throw controller.signal.reason;
        if (err instanceof AgentPoolError) throw err;
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
        throw new Error(`fetch_url could not fetch ${url.href}: ${(err as Error).message}${cause}`, {
          cause: err,
        });
      } finally {
        timer.cancel();
        ctx.signal.removeEventListener('abort', onAbort);
      }
    },
  });
}

async function readText(res: Response, maxBytes: number): Promise<{ body: string; truncated: boolean }> {
  if (res.body === null) return { body: '', truncated: false };
  const reader = res.body.getReader();
  // Streaming decode: a multi-byte character split by the cut is dropped, not turned into U+FFFD.
  const decoder = new TextDecoder();
  let body = '';
  let kept = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { body: body + decoder.decode(), truncated: false };
    if (kept + value.byteLength > maxBytes) {
      body += decoder.decode(value.subarray(0, maxBytes - kept), { stream: true });
      // Stops the download instead of reading a large body only to throw it away.
      await reader.cancel();
      return { body, truncated: true };
    }
    kept += value.byteLength;
    body += decoder.decode(value, { stream: true });
  }
}
