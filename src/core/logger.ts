/**
 * The one logger of agentpool: pino (fastify's own), handed down from the composition root as
 * child loggers per subsystem (`logger.child({ component: 'runs' })`). Library users get a silent
 * logger unless they pass theirs; `agentpool serve` builds one with {@link createLogger}: JSON
 * lines on stdout, or pino-pretty's human lines when stdout is a terminal.
 *
 * Levels mean something: `error` someone must act, `warn` degraded, `info` lifecycle, `debug` per
 * request. Never a key, a prompt or a model output at `info`.
 */
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';
import { enumOption } from './options.ts';

/** The logger the core writes to: pino's interface, so fastify and pino itself take it as it is. */
export type Logger = PinoLogger;

/** Levels a logger can be set to, most severe first; `silent` writes nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * A logger that writes nothing: the default of `createAgentPool()` and `buildServer()`. A new one
 * per call (a pino logger's level is mutable, so a shared one would be module-level state).
 */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The least severe level written. @default 'info' */
  level?: LogLevel;
  /**
   * Human-readable, coloured lines (pino-pretty, written synchronously) instead of JSON lines.
   * `agentpool serve` turns it on when stdout is a terminal. @default false
   */
  pretty?: boolean;
  /** Colours in pretty output (the CLI turns them off under `NO_COLOR`). @default true */
  colors?: boolean;
  /** Where lines go (a Node writable stream when `pretty`). @default stdout */
  destination?: DestinationStream;
}

/**
 * Paths that must never reach a log line even when a whole request or headers object is logged
 * by mistake (fastify's own serializers, a third-party plugin): the API key and cookies.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
];

/**
 * A logger for a server: JSON lines (`level` as its label, `time` as ISO 8601, `pid`, `hostname`,
 * then the line's fields and `msg`) on stdout, or pretty lines. Bad options are
 * `VALIDATION_FAILED` naming the field.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = enumOption('logger.level', options.level, LOG_LEVELS, 'info');
  const redact = { paths: REDACT, censor: '[redacted]' };
  if (options.pretty === true) {
    // Required lazily: library users and JSON output never load pino-pretty and its dependencies.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const stream = pretty({
      sync: true, // a line is on the terminal before the process can exit
      colorize: options.colors ?? true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
      destination: options.destination ?? 1,
    });
    return pino({ level, redact }, stream);
  }
  return pino(
    {
      level,
      redact,
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"warn" reads better in a log store than "level":40.
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
