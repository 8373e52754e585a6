/**
 * `agentpool usage [project]`: a project's quotas and budgets against what it uses now
 * (`GET /v1/projects/{id}/usage`), readable by the admin and by the project's own keys.
 */
import type { Command } from 'commander';
import { DEFAULT_PROJECT } from '../../registry/definition.ts';
import { AgentPoolClient, ApiError, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions } from '../options.ts';
import { printRecord } from '../output.ts';

/** Flags of `agentpool usage`. */
export interface UsageFlags extends ClientFlags {
  json?: boolean;
}

interface QuotaView {
  limit?: number | null;
  used?: number;
}

interface BudgetView {
  limitUsd?: number | null;
  spentUsd?: number;
  reservedUsd?: number;
  remainingUsd?: number | null;
  resetsAt?: string;
}

/** `ProjectUsage` as it arrives; fields a server of another version lacks may be missing. */
export interface UsageView {
  project?: string;
  quotas?: Partial<
    Record<'maxAgents' | 'maxConcurrentRuns' | 'runsPerMinute' | 'tokensPerMinute', QuotaView>
  >;
  budgets?: { daily?: BudgetView; monthly?: BudgetView; perRunUsd?: number | null };
}

/**
 * Prints the usage of `project`, else of `--project`, else of the default project (a project
 * key can read only its own project's).
 */
export async function usageCommand(project: string | undefined, flags: UsageFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const id = project ?? flags.project ?? DEFAULT_PROJECT;
  let usage: UsageView;
  try {
    usage = await client.request<UsageView>('GET', `/v1/projects/${encodeURIComponent(id)}/usage`);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'PROJECT_NOT_FOUND' && project === undefined) {
      throw err.withHint('name the project: agentpool usage <project>');
    }
    throw err;
  }
  if (flags.json === true) printRecord(io, usage, true);
  else for (const line of formatUsage(usage)) io.out(line);
}

/** The lines of `agentpool usage`. */
export function formatUsage(u: UsageView): string[] {
  const count = (n: number | null | undefined) => (typeof n === 'number' ? n.toLocaleString('en-US') : '?');
  const quota = (q: QuotaView | undefined) =>
    `${count(q?.used)} of ${q?.limit === null || q?.limit === undefined ? 'unlimited' : count(q.limit)}`;
  const usd = (n: number | null | undefined) => (typeof n === 'number' ? `$${n.toFixed(4)}` : '?');
  const budget = (b: BudgetView | undefined) => {
    if (b === undefined) return '?';
    const limit =
      b.limitUsd === null || b.limitUsd === undefined
        ? 'no limit'
        : `${usd(b.remainingUsd)} left of ${usd(b.limitUsd)}`;
    const resets = b.resetsAt === undefined ? '' : ` (resets ${b.resetsAt})`;
    return `${usd(b.spentUsd)} spent, ${usd(b.reservedUsd)} reserved, ${limit}${resets}`;
  };
  const perRun = u.budgets?.perRunUsd;
  return [
    `project          ${u.project ?? '?'}`,
    `agents           ${quota(u.quotas?.maxAgents)}`,
    `runs in flight   ${quota(u.quotas?.maxConcurrentRuns)}`,
    `runs / minute    ${quota(u.quotas?.runsPerMinute)}`,
    `tokens / minute  ${quota(u.quotas?.tokensPerMinute)}`,
    `daily budget     ${budget(u.budgets?.daily)}`,
    `monthly budget   ${budget(u.budgets?.monthly)}`,
    `per-run budget   ${typeof perRun === 'number' ? usd(perRun) : 'no limit'}`,
  ];
}

/** Adds `agentpool usage` to the program. */
export function registerUsageCommand(program: Command, io: CliIo): void {
  clientOptions(
    program
      .command('usage')
      .description("show a project's quotas and budgets against what it uses now")
      .argument('[project]', 'project id (default: --project, else "default")')
      .option('--json', 'print the JSON (ProjectUsage) instead'),
  )
    .addHelpText(
      'after',
      `${CLIENT_HELP}\nThe admin key reads any project's usage; a project key only its own.\n\nExample:\n  $ agentpool usage acme`,
    )
    .action(async (project: string | undefined, flags: UsageFlags) => {
      await usageCommand(project, flags, io);
    });
}
