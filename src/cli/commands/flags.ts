/**
 * `agentpool flags ls|set|rm`: the feature flags of a running server, with the admin key
 * (`/v1/flags`). `set` takes the strategy from flags (`--strategy percentage --percent 20`) or
 * from a YAML/JSON file (`-f flag.yaml`, the body of `PUT /v1/flags/{name}`); the server
 * validates it. A change is in effect on every node of the cluster within a second.
 */
import type { Command } from 'commander';
import { AgentPoolError } from '../../core/errors.ts';
import { FLAG_STRATEGIES } from '../../governance/flags.ts';
import { AgentPoolClient, API_KEY_ENV, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions, nonNegativeInt } from '../options.ts';
import { formatTable, iso, printRecord } from '../output.ts';
import { readStructuredFile } from '../structured-file.ts';

/** Flags of `agentpool flags ls`. */
export interface FlagsLsFlags extends ClientFlags {
  json?: boolean;
}

/** Flags of `agentpool flags set`. */
export interface FlagsSetFlags extends ClientFlags {
  strategy?: string;
  percent?: string;
  projects?: string;
  startPercent?: string;
  endPercent?: string;
  durationMs?: number;
  startedAt?: number;
  file?: string;
  ifRevision?: number;
  json?: boolean;
}

/** Flags of `agentpool flags rm`. */
export interface FlagsRmFlags extends ClientFlags {
  ifRevision?: number;
}

/** A flag as the server answers it. */
interface FlagView {
  name: string;
  flag: {
    strategy: string;
    percent?: number;
    projects?: string[];
    startPercent?: number;
    endPercent?: number;
  };
  startedAt: number;
  percent: number | null;
  revision: number;
  updatedAt: number;
  updatedBy: string;
}

const flagPath = (name: string) => `/v1/flags/${encodeURIComponent(name)}`;

/** A usage error (exit 2) naming the flag. */
function usage(field: string, message: string): AgentPoolError {
  return new AgentPoolError('VALIDATION_FAILED', `${field} ${message}`, { field, source: 'flag' });
}

/** What a strategy says, in a few words: `20%`, `acme,beta`, `0%→100% over 3600000ms`. */
function describe(flag: FlagView['flag']): string {
  switch (flag.strategy) {
    case 'percentage':
      return `${flag.percent}%`;
    case 'allowlist':
    case 'denylist':
      return (flag.projects ?? []).join(',') || '-';
    case 'gradual': {
      const { startPercent, endPercent, durationMs } = flag as { durationMs?: number } & FlagView['flag'];
      return `${startPercent}%→${endPercent}% over ${durationMs}ms`;
    }
    default:
      return '-';
  }
}

/** A number as the user typed it (the server says whether it fits); NaN text is a usage error. */
function numberFlag(field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw usage(field, `must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** The body of `PUT /v1/flags/{name}` from the file, or from the strategy flags. */
function flagBody(flags: FlagsSetFlags): Record<string, unknown> {
  if (flags.file !== undefined) {
    if (flags.strategy !== undefined) throw usage('--file', 'cannot be given with --strategy');
    const body = readStructuredFile(flags.file, 'flag file');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw usage('--file', `must hold an object with a "strategy", got ${JSON.stringify(body)}`);
    }
    return body as Record<string, unknown>;
  }
  if (flags.strategy === undefined)
    throw usage('--strategy', 'is required (or give the flag in a file with -f)');
  const fields: Record<string, unknown> = {
    strategy: flags.strategy,
    percent: numberFlag('--percent', flags.percent),
    projects: flags.projects?.split(',').map((p) => p.trim()),
    startPercent: numberFlag('--start-percent', flags.startPercent),
    endPercent: numberFlag('--end-percent', flags.endPercent),
    durationMs: flags.durationMs,
    startedAt: flags.startedAt,
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

const ifMatch = (revision: number | undefined) =>
  revision === undefined ? {} : { headers: { 'if-match': String(revision) } };

/** Lists the flags: NAME, STRATEGY, SETTING, ON NOW, REVISION, UPDATED BY, UPDATED. */
export async function flagsLsCommand(flags: FlagsLsFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const { data } = await client.request<{ data: FlagView[] }>('GET', '/v1/flags');
  if (flags.json === true) {
    printRecord(io, { data }, true);
    return;
  }
  if (data.length === 0) {
    io.err('no feature flags');
    return;
  }
  const rows = data.map((f) => [
    f.name,
    f.flag.strategy,
    describe(f.flag),
    f.percent === null ? '-' : `${Math.round(f.percent * 100) / 100}%`,
    String(f.revision),
    f.updatedBy,
    iso(f.updatedAt),
  ]);
  const header = ['NAME', 'STRATEGY', 'SETTING', 'ON NOW', 'REVISION', 'UPDATED BY', 'UPDATED'];
  for (const line of formatTable([header, ...rows])) io.out(line);
}

/** Creates or replaces a flag; prints `set <name>: <strategy> <setting> (revision n)`. */
export async function flagsSetCommand(name: string, flags: FlagsSetFlags, io: CliIo): Promise<void> {
  const body = flagBody(flags);
  const client = AgentPoolClient.from(flags, io.env);
  const flag = await client.request<FlagView>('PUT', flagPath(name), { body, ...ifMatch(flags.ifRevision) });
  if (flags.json === true) {
    printRecord(io, flag, true);
    return;
  }
  io.out(`set ${flag.name}: ${flag.flag.strategy} ${describe(flag.flag)} (revision ${flag.revision})`);
}

/** Deletes a flag; prints `deleted <name>`. */
export async function flagsRmCommand(name: string, flags: FlagsRmFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  await client.request('DELETE', flagPath(name), ifMatch(flags.ifRevision));
  io.out(`deleted ${name}`);
}

/** Adds `agentpool flags …` to the program. */
export function registerFlagsCommand(program: Command, io: CliIo): void {
  const adminHelp = `${CLIENT_HELP}\nThese commands need the admin key (${API_KEY_ENV} set to it).`;
  const group = program
    .command('flags')
    .description('list, set and delete feature flags at runtime (admin)')
    .addHelpText('after', adminHelp);

  clientOptions(
    group
      .command('ls')
      .description('list the feature flags, with the share of keys each lets through now')
      .option('--json', 'print the JSON ({ data }) instead'),
  )
    .addHelpText('after', adminHelp)
    .action(async (flags: FlagsLsFlags) => {
      await flagsLsCommand(flags, io);
    });

  clientOptions(
    group
      .command('set')
      .description('create or replace a feature flag (audited; in effect on every node within a second)')
      .argument('<name>', 'flag name: 1-64 lowercase letters, digits, ".", "_", "-"')
      .option('--strategy <strategy>', `one of ${FLAG_STRATEGIES.join(', ')}`)
      .option('--percent <n>', 'percentage: the share of keys let through, 0-100')
      .option('--projects <ids>', 'allowlist, denylist: project ids, comma-separated')
      .option('--start-percent <n>', 'gradual: the share at the start, 0-100')
      .option('--end-percent <n>', 'gradual: the share at the end, 0-100')
      .option('--duration-ms <ms>', 'gradual: how long the ramp takes', nonNegativeInt('--duration-ms'))
      .option(
        '--started-at <ms>',
        'gradual: when the ramp starts, epoch ms (default now)',
        nonNegativeInt('--started-at'),
      )
      .option(
        '-f, --file <path>',
        'the flag as a YAML or JSON file ({ strategy, … }) instead of the flags above',
      )
      .option(
        '--if-revision <n>',
        'only if the flag is at this revision (0: only create it)',
        nonNegativeInt('--if-revision'),
      )
      .option('--json', 'print the flag as JSON'),
  )
    .addHelpText(
      'after',
      `${adminHelp}\n\nExamples:\n  $ agentpool flags set new-ui --strategy percentage --percent 20\n  $ agentpool flags set beta --strategy allowlist --projects acme,globex\n  $ agentpool flags set ramp --strategy gradual --start-percent 0 --end-percent 100 --duration-ms 86400000\n  $ agentpool flags set new-ui -f new-ui.yaml`,
    )
    .action(async (name: string, flags: FlagsSetFlags) => {
      await flagsSetCommand(name, flags, io);
    });

  clientOptions(
    group
      .command('rm')
      .description('delete a feature flag (its history stays; code asking for it then gets NOT_FOUND)')
      .argument('<name>', 'flag name')
      .option('--if-revision <n>', 'only if the flag is at this revision', nonNegativeInt('--if-revision')),
  )
    .addHelpText('after', adminHelp)
    .action(async (name: string, flags: FlagsRmFlags) => {
      await flagsRmCommand(name, flags, io);
    });
}
