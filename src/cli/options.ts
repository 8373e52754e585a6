/**
 * What the client commands share on the command line: `--url` and `--project`, value parsers
 * that turn a bad value into a usage error (exit 2) naming the flag, and the help text about
 * reaching the server.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { isAgentPoolError } from '../core/errors.ts';
import { assertSlug } from '../registry/definition.ts';
import { API_KEY_ENV, DEFAULT_SERVER_URL, resolveServerUrl, SERVER_URL_ENV } from './http-client.ts';

/** The help text of every command that talks to a server. */
export const CLIENT_HELP = `
Talks to a running \`agentpool serve\` over HTTP: --url, else ${SERVER_URL_ENV}, else
${DEFAULT_SERVER_URL}. With ${API_KEY_ENV} set, it is sent as a bearer token; --project <id>
makes the admin key act in that project (a project key always acts in its own).
Server errors print as  error: <CODE>: <message>  and exit 1.`;

/** A commander value parser that rejects with a usage error. */
type Parser<T> = (value: string, previous: T | undefined) => T;

/** `--url`: an http(s) URL, else a usage error. */
function parseUrl(value: string): string {
  try {
    return resolveServerUrl(value, {});
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
}

/** `--project`: a project id (a slug), else a usage error. */
function parseProject(value: string): string {
  try {
    return assertSlug('--project', value);
  } catch (err) {
    if (!isAgentPoolError(err)) throw err;
    throw new InvalidArgumentError(err.message);
  }
}

/** Adds `--url` and `--project` to a client command. */
export function clientOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--url <url>',
        `server URL (default $${SERVER_URL_ENV}, else ${DEFAULT_SERVER_URL})`,
      ).argParser(parseUrl),
    )
    .addOption(
      new Option('--project <id>', 'the project to act in (admin key only)').argParser(parseProject),
    );
}

/** An integer from 1 to `max`. */
export function positiveInt(name: string, max: number): Parser<number> {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) {
      throw new InvalidArgumentError(
        `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

/** An integer from 0 up. */
export function nonNegativeInt(name: string): Parser<number> {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name} must be an integer of 0 or more, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** `key=value`, repeatable: the pairs in order. */
export function keyValues(name: string): Parser<string[]> {
  return (value, previous) => {
    if (value.indexOf('=') <= 0) {
      throw new InvalidArgumentError(`${name} must be key=value, got ${JSON.stringify(value)}`);
    }
    return [...(previous ?? []), value];
  };
}

/** A JSON object (`--metadata '{"team":"a"}'`). */
export function jsonObject(name: string): Parser<Record<string, unknown>> {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError(`${name} must be a JSON object, got ${JSON.stringify(value)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidArgumentError(`${name} must be a JSON object, got ${JSON.stringify(value)}`);
    }
    return parsed as Record<string, unknown>;
  };
}
