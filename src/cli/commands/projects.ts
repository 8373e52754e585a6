/**
 * `agentpool projects ls|create|get|rm|limits`: a running server's projects (tenants), with the
 * admin key (`/v1/projects…`). `limits` shows a project's quotas, budgets and retention, or
 * changes them field by field (`--quota maxConcurrentRuns=5 --budget dailyUsd=default`).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { AgentPoolClient, ApiError, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions, jsonObject, positiveInt } from '../options.ts';
import { formatTable, iso, printRecord } from '../output.ts';

/** Flags of `agentpool projects ls`. */
export interface ProjectsLsFlags extends ClientFlags {
  limit?: number;
  json?: boolean;
}

/** Flags of `agentpool projects create`. */
export interface ProjectsCreateFlags extends ClientFlags {
  name?: string;
  metadata?: Record<string, unknown>;
  /** `{ quotas?, budgets? }` as JSON. */
  limits?: Record<string, unknown>;
  json?: boolean;
}

/** Flags of `agentpool projects get`. */
export interface ProjectsGetFlags extends ClientFlags {
  json?: boolean;
}

/** Flags of `agentpool projects rm`. */
export interface ProjectsRmFlags extends ClientFlags {
  /** Delete the project's agents, threads, runs and keys with it. */
  cascade?: boolean;
  json?: boolean;
}

/** Limit fields to change: a number, or null to return the field to the server's default. */
type LimitPatch = Record<string, number | null>;

/** Flags of `agentpool projects limits`. */
export interface ProjectsLimitsFlags extends ClientFlags {
  /** Quota fields to change (`--quota maxConcurrentRuns=5`). */
  quota?: LimitPatch;
  /** Budget fields to change, in USD (`--budget dailyUsd=10`). */
  budget?: LimitPatch;
  /** Days its runs and threads are kept (`--retention-days 7`); `default` returns to the server's `retention.days`. */
  retentionDays?: number | 'default';
  json?: boolean;
}

/** A project (the `Project` record) as the commands print it. */
interface ProjectView {
  id: string;
  name: string;
  createdAt: number;
  metadata: Record<string, unknown>;
  limits?: {
    quotas?: Record<string, unknown>;
    budgets?: Record<string, unknown>;
    retention?: Record<string, unknown>;
  };
}

const projectPath = (id: string) => `/v1/projects/${encodeURIComponent(id)}`;

/** Lists projects: ID, NAME, CREATED (or the JSON). */
export async function projectsLsCommand(flags: ProjectsLsFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const page = await client.list<ProjectView>('/v1/projects', {}, flags.limit);
  if (flags.json === true) {
    printRecord(io, page, true);
    return;
  }
  if (page.data.length === 0) {
    io.err('no projects');
    return;
  }
  const rows = page.data.map((p) => [p.id, p.name === '' ? '-' : p.name, iso(p.createdAt)]);
  for (const line of formatTable([['ID', 'NAME', 'CREATED'], ...rows])) io.out(line);
  if (flags.limit !== undefined && page.nextCursor !== null) {
    io.err('(more projects: raise --limit, or leave it out to list them all)');
  }
}

/** Creates a project; prints `created <id>` (or the JSON). */
export async function projectsCreateCommand(
  id: string,
  flags: ProjectsCreateFlags,
  io: CliIo,
): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const project = await client.request<ProjectView>('POST', '/v1/projects', {
    body: {
      id,
      ...(flags.name !== undefined && { name: flags.name }),
      ...(flags.metadata !== undefined && { metadata: flags.metadata }),
      ...(flags.limits !== undefined && { limits: flags.limits }),
    },
  });
  if (flags.json === true) printRecord(io, project, true);
  else io.out(`created ${project.id}`);
}

/** Prints a project with its limits (YAML), or the JSON. */
export async function projectsGetCommand(id: string, flags: ProjectsGetFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const project = await client.request<ProjectView>('GET', projectPath(id));
  printRecord(
    io,
    flags.json === true ? project : { ...project, createdAt: iso(project.createdAt) },
    flags.json,
  );
}

/**
 * Deletes a project. The server refuses one that still holds agents, threads or runs unless
 * `--cascade`, which deletes them too and answers with what it deleted.
 */
export async function projectsRmCommand(id: string, flags: ProjectsRmFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  let answer: unknown;
  try {
    answer = await client.request<unknown>('DELETE', projectPath(id), {
      query: { cascade: flags.cascade === true ? 'true' : undefined },
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && flags.cascade !== true) {
      throw err.withHint('add --cascade to delete the project with its agents, threads, runs and keys');
    }
    throw err;
  }
  if (flags.json === true) {
    printRecord(io, answer ?? { deleted: id }, true);
    return;
  }
  const counts = deletedCounts(answer);
  io.out(counts === '' ? `deleted ${id}` : `deleted ${id} (${counts})`);
}

/**
 * `agents 3, threads 2, runs 7`: the numbers of a cascade's answer, wherever it puts them
 * (`{ deleted: { agents: 3, … } }` or at the top level); empty for a 204.
 */
export function deletedCounts(answer: unknown): string {
  if (typeof answer !== 'object' || answer === null) return '';
  const record = answer as Record<string, unknown>;
  const source =
    typeof record.deleted === 'object' && record.deleted !== null
      ? (record.deleted as Record<string, unknown>)
      : record;
  return Object.entries(source)
    .filter(([, value]) => typeof value === 'number')
    .map(([key, value]) => `${key} ${String(value)}`)
    .join(', ');
}

/** Shows a project's limits, or changes the fields given and shows the result. */
export async function projectsLimitsCommand(
  id: string,
  flags: ProjectsLimitsFlags,
  io: CliIo,
): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const { quota: quotas, budget: budgets, retentionDays } = flags;
  const retention =
    retentionDays === undefined ? undefined : retentionDays === 'default' ? null : { days: retentionDays };
  const project =
    quotas === undefined && budgets === undefined && retention === undefined
      ? await client.request<ProjectView>('GET', projectPath(id))
      : await client.request<ProjectView>('PATCH', projectPath(id), {
          body: {
            limits: {
              ...(quotas && { quotas }),
              ...(budgets && { budgets }),
              ...(retention !== undefined && { retention }),
            },
          },
        });
  const limits = project.limits ?? {};
  if (flags.json === true) {
    printRecord(io, limits, true);
    return;
  }
  io.out(`quotas   ${formatLimits(limits.quotas)}`);
  io.out(`budgets  ${formatLimits(limits.budgets)}`);
  if (limits.retention !== undefined) io.out(`retention ${formatLimits(limits.retention)}`);
}

/** `--retention-days`: days from 0 up, or `default` (the server's `retention.days`). */
function retentionDays(value: string): number | 'default' {
  if (value === 'default') return value;
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError(
      `--retention-days must be a number of days (0: kept) or "default", got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/**
 * A commander parser of repeated `field=value`: numbers, and `default` (or `null`) as null, which
 * returns the field to the server's default. A bad value is a usage error naming the flag.
 */
function limitField(flag: string): (pair: string, previous: LimitPatch | undefined) => LimitPatch {
  return (pair, previous) => {
    const at = pair.indexOf('=');
    const field = pair.slice(0, at).trim();
    const raw = pair.slice(at + 1).trim();
    if (at <= 0 || field === '') {
      throw new InvalidArgumentError(`${flag} must be field=value, got ${JSON.stringify(pair)}`);
    }
    if (raw === 'default' || raw === 'null') return { ...previous, [field]: null };
    const value = Number(raw);
    if (raw === '' || !Number.isFinite(value)) {
      throw new InvalidArgumentError(
        `${flag} ${field} must be a number or "default", got ${JSON.stringify(raw)}`,
      );
    }
    return { ...previous, [field]: value };
  };
}

function formatLimits(limits: Record<string, unknown> | undefined): string {
  const entries = Object.entries(limits ?? {});
  if (entries.length === 0) return "the server's defaults";
  return entries.map(([key, value]) => `${key} ${JSON.stringify(value)}`).join(', ');
}

/** Adds `agentpool projects …` to the program. */
export function registerProjectsCommand(program: Command, io: CliIo): void {
  const adminHelp = `${CLIENT_HELP}\nThese commands need the admin key (AGENTPOOL_API_KEY set to it).`;
  const projects = program
    .command('projects')
    .description("list, create, show and delete a server's projects, and set their limits (admin)")
    .addHelpText('after', adminHelp);

  clientOptions(
    projects
      .command('ls')
      .description('list projects: ID, NAME, CREATED')
      .option('--limit <n>', 'one page of at most n projects (default: all)', positiveInt('--limit', 1000))
      .option('--json', 'print the JSON ({ data, nextCursor }) instead'),
  )
    .addHelpText('after', adminHelp)
    .action(async (flags: ProjectsLsFlags) => {
      await projectsLsCommand(flags, io);
    });

  clientOptions(
    projects
      .command('create')
      .description('create a project')
      .argument('<id>', 'project id: lowercase letters, digits and hyphens')
      .option('--name <name>', 'a display name')
      .option('--metadata <json>', 'free-form JSON object kept with the project', jsonObject('--metadata'))
      .option(
        '--limits <json>',
        'quotas and budgets, e.g. \'{"quotas":{"maxConcurrentRuns":5},"budgets":{"dailyUsd":10}}\'',
        jsonObject('--limits'),
      )
      .option('--json', 'print the project as JSON'),
  )
    .addHelpText('after', `${adminHelp}\n\nExample:\n  $ agentpool projects create acme --name "Acme Corp"`)
    .action(async (id: string, flags: ProjectsCreateFlags) => {
      await projectsCreateCommand(id, flags, io);
    });

  clientOptions(
    projects
      .command('get')
      .description('show a project with its limits')
      .argument('<id>', 'project id')
      .option('--json', 'print the JSON instead'),
  )
    .addHelpText('after', adminHelp)
    .action(async (id: string, flags: ProjectsGetFlags) => {
      await projectsGetCommand(id, flags, io);
    });

  clientOptions(
    projects
      .command('rm')
      .description('delete a project and its keys; --cascade also deletes its agents, threads and runs')
      .argument('<id>', 'project id')
      .option('--cascade', 'delete what the project holds too (refused without it when it is not empty)')
      .option('--json', "print the server's answer as JSON"),
  )
    .addHelpText('after', adminHelp)
    .action(async (id: string, flags: ProjectsRmFlags) => {
      await projectsRmCommand(id, flags, io);
    });

  clientOptions(
    projects
      .command('limits')
      .description("show a project's quotas, budgets and retention, or change some of them")
      .argument('<id>', 'project id')
      .option(
        '--quota <field=value>',
        'set a quota (maxAgents, maxConcurrentRuns, runsPerMinute, tokensPerMinute); value "default" resets it; repeatable',
        limitField('--quota'),
      )
      .option(
        '--budget <field=value>',
        'set a budget in USD (dailyUsd, monthlyUsd, perRunUsd); value "default" resets it; repeatable',
        limitField('--budget'),
      )
      .option(
        '--retention-days <days>',
        'keep its runs and threads this many days (0: for good) instead of the server\'s retention.days; "default" resets it',
        retentionDays,
      )
      .option('--json', 'print the limits as JSON'),
  )
    .addHelpText(
      'after',
      `${adminHelp}\n\nExamples:\n  $ agentpool projects limits acme\n  $ agentpool projects limits acme --quota maxConcurrentRuns=5 --budget dailyUsd=10\n  $ agentpool projects limits acme --budget dailyUsd=default\n  $ agentpool projects limits acme --retention-days 7`,
    )
    .action(async (id: string, flags: ProjectsLimitsFlags) => {
      await projectsLimitsCommand(id, flags, io);
    });
}
