/**
 * `agentpool runs get|cancel|follow`: one run of a running server (`GET /v1/runs/{id}`,
 * `POST /v1/runs/{id}/cancel`, `GET /v1/runs/{id}/events`). `follow` prints the run's events the
 * way `agentpool run` does, from the start or after `--after <seq>`, and resumes after the last
 * event it printed when the stream breaks off, so a flaky connection loses nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { AgentPoolClient, ApiError, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions, nonNegativeInt } from '../options.ts';
import { iso, printRecord } from '../output.ts';
import { RunEventPrinter, type RunIo, type RunView, summary, type WireEvent } from './run.ts';

/** Flags of `agentpool runs get` and `runs cancel`. */
export interface RunsGetFlags extends ClientFlags {
  json?: boolean;
}

/** Flags of `agentpool runs follow`. */
export interface RunsFollowFlags extends ClientFlags {
  /** Print only the events after this sequence number. */
  after?: number;
}

/** The statuses a run ends in. */
const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
/** How often `follow` reconnects in a row after a stream without a new event before it gives up. */
const MAX_RESUMES = 5;
/** The pause before the n-th reconnection in a row after an empty stream: n × this. */
const RESUME_BACKOFF_MS = 250;

/** A run record as the server sends it; printed whole, with times made readable. */
type RunRecordView = Record<string, unknown> & RunView;

const runPath = (id: string) => `/v1/runs/${encodeURIComponent(id)}`;

/** Prints a run record as YAML (epoch times as ISO), or the JSON. */
export async function runsGetCommand(id: string, flags: RunsGetFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const run = await client.request<RunRecordView>('GET', runPath(id));
  printRecord(io, flags.json === true ? run : readableRun(run), flags.json);
}

/** Cancels a queued or running run; prints `cancelled <id>` and its summary (or the JSON). */
export async function runsCancelCommand(id: string, flags: RunsGetFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const run = await client.request<RunRecordView>('POST', `${runPath(id)}/cancel`);
  if (flags.json === true) {
    printRecord(io, run, true);
    return;
  }
  io.out(`cancelled ${run.id}`);
  io.err(summary(run));
}

/**
 * Follows a run's events to its end: exits 0 when it succeeded, 1 with its error code when it
 * failed, was cancelled or interrupted. A stream that ends early is resumed after the last event.
 */
export async function runsFollowCommand(id: string, flags: RunsFollowFlags, io: RunIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const printer = new RunEventPrinter(io);
  printer.lastSeq = flags.after ?? 0;
  let failures = 0;
  for (;;) {
    const before = printer.lastSeq;
    let broke: unknown;
    try {
      const events = client.events('GET', `${runPath(id)}/events`, {
        ...(printer.lastSeq > 0 && { headers: { 'last-event-id': String(printer.lastSeq) } }),
      });
      for await (const sse of events) {
        if (printer.render(JSON.parse(sse.data) as WireEvent, sse.id)) return;
      }
    } catch (err) {
      // The server's answer (RUN_NOT_FOUND, a failed run) is final; a broken connection is not.
      if (err instanceof ApiError) throw err;
      broke = err;
    }
    if (printer.lastSeq === before) {
      // Nothing new: maybe the run ended before the events asked for (`--after` past its end, or
      // a run no longer in the server's memory). Its record says so.
      const run = await client.request<RunRecordView>('GET', runPath(id));
      if (TERMINAL.has(run.status)) {
        printer.endLine();
        io.err(summary(run));
        if (run.status === 'succeeded') return;
        throw new ApiError(
          run.error?.code ?? `RUN_${run.status.toUpperCase()}`,
          run.error?.message ?? run.status,
          0,
        );
      }
    }
    // Progress resets the count (and resumes at once); empty streams back off, then give up.
    failures = printer.lastSeq > before ? 0 : failures + 1;
    if (failures > MAX_RESUMES) {
      const why = broke instanceof Error ? `: ${broke.message}` : '';
      throw new Error(
        `the event stream of ${id} ended ${failures} times in a row without a new event before the run finished${why}`,
        { cause: broke },
      );
    }
    printer.note(`(the event stream broke off after event ${printer.lastSeq}; resuming)`);
    await sleep(RESUME_BACKOFF_MS * failures);
  }
}

function readableRun(run: RunRecordView): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(run)) {
    out[key] = key.endsWith('At') && typeof value === 'number' ? iso(value) : value;
  }
  return out;
}

/** Adds `agentpool runs …` to the program. */
export function registerRunsCommand(program: Command, io: RunIo): void {
  const runs = program
    .command('runs')
    .description('show, cancel and follow the runs of a running server')
    .addHelpText('after', CLIENT_HELP);

  clientOptions(
    runs
      .command('get')
      .description('show a run: status, agent and version, input, output, steps, tokens, cost, error')
      .argument('<id>', 'run id (run_…)')
      .option('--json', 'print the JSON instead'),
  )
    .addHelpText('after', CLIENT_HELP)
    .action(async (id: string, flags: RunsGetFlags) => {
      await runsGetCommand(id, flags, io);
    });

  clientOptions(
    runs
      .command('cancel')
      .description('cancel a queued or running run (RUN_NOT_ACTIVE when it already ended)')
      .argument('<id>', 'run id (run_…)')
      .option('--json', 'print the cancelled run as JSON'),
  )
    .addHelpText('after', CLIENT_HELP)
    .action(async (id: string, flags: RunsGetFlags) => {
      await runsCancelCommand(id, flags, io);
    });

  clientOptions(
    runs
      .command('follow')
      .description("print a run's events as `agentpool run` does, until it ends (a background run, say)")
      .argument('<id>', 'run id (run_…)')
      .option('--after <seq>', 'only the events after this sequence number', nonNegativeInt('--after')),
  )
    .addHelpText(
      'after',
      `
Replays the events so far, then prints new ones as they happen. When the stream breaks off, it
reconnects and resumes after the last event printed (Last-Event-ID). Exits 0 when the run
succeeded, 1 with its error code when it failed, was cancelled or interrupted. Ctrl-C stops
following; the run goes on.
${CLIENT_HELP}

Example:
  $ agentpool runs follow run_01…`,
    )
    .action(async (id: string, flags: RunsFollowFlags) => {
      await runsFollowCommand(id, flags, io);
    });
}
