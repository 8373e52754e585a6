/**
 * Deleting a project's data. A project that holds agents, threads or runs is refused
 * (`PROJECT_NOT_EMPTY`, with the counts) unless the caller asks for a cascade. A cascade first
 * stops what runs in the project (its runs in flight are cancelled, its live instances retired),
 * then deletes its keys (so nobody acts in it meanwhile), runs, threads with their messages,
 * agents with their versions, and finally the record. Every step is one short store transaction
 * of at most {@link DELETE_BATCH} rows, and the deletion yields to the event loop between steps,
 * so other tenants' requests are served while a large project goes.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AgentPoolError } from '../core/errors.ts';
import type { ProjectStore } from '../store/project-ports.ts';
import type { AgentStore, RunStore } from '../store/ports.ts';

/** Rows one step deletes at most: a few milliseconds of SQLite work, however big the project. */
export const DELETE_BATCH = 500;

/** What a project holds, as the `PROJECT_NOT_EMPTY` refusal reports it. */
export interface ProjectContents {
  agents: number;
  threads: number;
  runs: number;
}

/** What deleting a project deleted. */
export interface DeletedProject {
  project: string;
  deleted: { agents: number; threads: number; messages: number; runs: number; keys: number };
}

/** The stores and hooks a project's deletion works with. */
export interface ProjectDataDeps {
  agents: AgentStore;
  runs: RunStore;
  /** Stops what runs in the project: cancels its runs in flight, retires its live instances. */
  stop?: (project: string) => Promise<void>;
  /**
   * Forgets what this process keeps about the project (live instances, figures, cached limits)
   * once its data is gone, so a project created again with its id starts with nothing.
   */
  forget?: (project: string) => void | Promise<void>;
}

/** Counts a project's agents, threads and runs (threads in bounded steps, yielding between them). */
export async function countProjectContents(project: string, deps: ProjectDataDeps): Promise<ProjectContents> {
  const agents = await deps.agents.count(project);
  const runs = await deps.runs.countProjectRuns(project);
  let threads = 0;
  let cursor: string | undefined;
  do {
    const step = await deps.runs.countProjectThreads(project, { limit: 1000, cursor });
    threads += step.count;
    cursor = step.nextCursor ?? undefined;
    if (cursor !== undefined) await nextTurn();
  } while (cursor !== undefined);
  return { agents, threads, runs };
}

/** The refusal to delete a project that still holds data. */
export function projectNotEmpty(project: string, contents: ProjectContents): AgentPoolError {
  return new AgentPoolError(
    'PROJECT_NOT_EMPTY',
    `project ${JSON.stringify(project)} still holds ${contents.agents} agent(s), ${contents.threads} thread(s) ` +
      `and ${contents.runs} run(s): delete them first, or delete with ?cascade=true to delete them too`,
    { project, ...contents },
  );
}

/**
 * Deletes everything of a project and then its record, in bounded steps (see the file header).
 * The caller has made sure nobody new acts in the project meanwhile.
 */
export async function purgeProject(
  project: string,
  store: ProjectStore,
  deps: ProjectDataDeps,
): Promise<DeletedProject> {
  await deps.stop?.(project);
  const deleted = { agents: 0, threads: 0, messages: 0, runs: 0, keys: 0 };
  deleted.keys = await store.deleteKeys(project);
  const deleteRuns = async () => {
    for (;;) {
      const n = await deps.runs.deleteProjectRuns(project, DELETE_BATCH);
      deleted.runs += n;
      if (n === 0) return;
      await nextTurn();
    }
  };
  // Runs first, so that deleting a thread cascades over few rows.
  await deleteRuns();
  let cursor: string | undefined;
  do {
    const step = await deps.runs.deleteProjectThreads(project, { limit: DELETE_BATCH, cursor });
    deleted.threads += step.threads;
    deleted.messages += step.messages;
    deleted.runs += step.runs;
    cursor = step.nextCursor ?? undefined;
    await nextTurn();
  } while (cursor !== undefined);
  for (;;) {
    const n = await deps.agents.deleteProjectAgents(project, DELETE_BATCH);
    deleted.agents += n;
    if (n === 0) break;
    await nextTurn();
  }
  // A run whose request was already being accepted when the deletion began may have been recorded
  // since; its thread is gone, so only a stateless one can be left.
  await deleteRuns();
  await store.deleteProject(project);
  await deps.forget?.(project);
  return { project, deleted };
}
