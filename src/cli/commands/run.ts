/**
 * `agentpool run <agent> "message"`: starts a streaming run on a running server and renders its
 * server-sent events as they arrive: text deltas to stdout, tool calls and results as dim lines
 * to stderr, and a summary line to stderr at the end. A run that fails exits 1 with its code.
 */
import type { MultitaskStrategy } from '../../coordination/thread-gate.ts';
import { AgentPoolClient, ApiError, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';

/** Flags of `agentpool run`. */
export interface RunFlags extends ClientFlags {
  thread?: string;
  newThread?: boolean;
  multitask?: MultitaskStrategy;
}

/** The command's I/O: `write` puts text on stdout without a newline, so deltas show at once. */
export interface RunIo extends CliIo {
  /** Raw stdout; without it, text is printed line by line. */
  write?: (text: string) => void;
  /** Whether stderr lines may be dimmed with ANSI escapes. */
  colors?: boolean;
}

/** The parts of a run record (the `Run` schema) the command prints. */
export interface RunView {
  id: string;
  status: string;
  threadId: string | null;
  steps: number;
  inputTokens: number;
  outputTokens: number;
  error: { code: string; message: string } | null;
}

/** The run events the command renders (see `src/run/stream.ts`). */
export type WireEvent =
  | { type: 'run.started'; run: RunView }
  | { type: 'text.delta'; delta: string }
  | { type: 'tool.call'; toolName: string; input: unknown }
  | {
      type: 'tool.result';
      toolName: string;
      ok: boolean;
      output?: unknown;
      error?: { code: string; message: string };
    }
  | { type: 'step.finished' }
  | { type: 'run.finished'; run: RunView }
  | { type: 'run.failed'; run: RunView; error: { code: string; message: string } };

/** How much of a tool's input or output a line shows. */
const MAX_TOOL_JSON = 200;

/** What `--multitask` to suggest when the thread is busy. */
const THREAD_BUSY_HINT =
  'another run holds the thread: add --multitask enqueue to run after it (or --multitask interrupt to stop it)';

/** Runs `agentpool run`; a failed run (or a stream cut short) is thrown, so it exits 1. */
export async function runCommand(agent: string, message: string, flags: RunFlags, io: RunIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);

  let threadId = flags.thread;
  if (flags.newThread === true) {
    const thread = await client.request<{ id: string }>('POST', '/v1/threads', { body: {} });
    threadId = thread.id;
    io.err(`thread ${thread.id}  (continue with --thread ${thread.id})`);
  }

  const events = client.events('POST', `/v1/agents/${encodeURIComponent(agent)}/runs`, {
    body: {
      input: message,
      stream: true,
      ...(threadId !== undefined && { threadId }),
      ...(flags.multitask !== undefined && { multitask: flags.multitask }),
    },
  });
  const printer = new RunEventPrinter(io);
  try {
    for await (const sse of events) {
      if (printer.render(JSON.parse(sse.data) as WireEvent, sse.id)) return;
    }
  } catch (err) {
    if (err instanceof ApiError && err.code === 'THREAD_BUSY') throw err.withHint(THREAD_BUSY_HINT);
    throw err;
  }
  printer.endLine();
  const runId = printer.runId;
  const follow =
    runId === undefined
      ? ''
      : `; follow it with \`agentpool runs follow ${runId}${printer.lastSeq > 0 ? ` --after ${printer.lastSeq}` : ''}\``;
  throw new Error(`the event stream ended before the run finished${follow}`);
}

/**
 * Renders a run's events as `run` and `runs follow` print them: text to stdout as it streams,
 * tool calls and results as (dim) stderr lines, a summary line at the end; a failed run is thrown
 * as its error code.
 */
export class RunEventPrinter {
  readonly #io: RunIo;
  readonly #out: TextOut;
  /** The run's id, once `run.started` (or the end) said it. */
  runId: string | undefined;
  /** The sequence number of the last event rendered (0 before any): where to resume. */
  lastSeq = 0;

  constructor(io: RunIo) {
    this.#io = io;
    this.#out = new TextOut(io);
  }

  /**
   * Renders one event; true when it ended a run that succeeded. Throws the run's error when it
   * failed. `id` is the SSE id, the event's sequence number.
   */
  render(event: WireEvent, id?: string): boolean {
    const seq = Number(id);
    if (Number.isSafeInteger(seq) && seq > 0) this.lastSeq = seq;
    switch (event.type) {
      case 'run.started':
        this.runId = event.run.id;
        return false;
      case 'text.delta':
        this.#out.write(event.delta);
        return false;
      case 'tool.call':
        this.note(`→ ${event.toolName}(${clip(JSON.stringify(event.input) ?? '')})`);
        return false;
      case 'tool.result':
        this.note(
          event.ok
            ? `← ${clip(JSON.stringify(event.output) ?? 'undefined')}`
            : `← ${event.toolName} failed: ${event.error?.code ?? 'ERROR'}: ${event.error?.message ?? ''}`,
        );
        return false;
      case 'run.finished':
        this.runId = event.run.id;
        this.#out.endLine();
        this.#io.err(summary(event.run));
        return true;
      case 'run.failed':
        this.runId = event.run.id;
        this.#out.endLine();
        this.#io.err(summary(event.run));
        throw new ApiError(event.error.code, event.error.message, 0);
      default:
        return false; // step.finished and events this client does not know yet
    }
  }

  /** A line on stderr, dimmed on a terminal, after ending any open line of streamed text. */
  note(line: string): void {
    this.#out.endLine();
    this.#io.err(this.#io.colors === true ? `\x1b[2m${line}\x1b[22m` : line);
  }

  /** Ends an open line of streamed text. */
  endLine(): void {
    this.#out.endLine();
  }
}

/** `run <id> succeeded in 2 steps, 52 in / 13 out tokens, thread thr_…`. */
export function summary(run: RunView): string {
  const steps = `${run.steps} step${run.steps === 1 ? '' : 's'}`;
  const thread = run.threadId === null ? '' : `, thread ${run.threadId}`;
  return `run ${run.id} ${run.status} in ${steps}, ${run.inputTokens} in / ${run.outputTokens} out tokens${thread}`;
}

function clip(text: string): string {
  return text.length <= MAX_TOOL_JSON ? text : `${text.slice(0, MAX_TOOL_JSON - 1)}…`;
}

/** Streamed text on stdout, remembering whether a line is open so stderr lines start fresh. */
class TextOut {
  readonly #io: RunIo;
  #pending = '';
  #open = false;

  constructor(io: RunIo) {
    this.#io = io;
  }

  write(text: string): void {
    if (text === '') return;
    if (this.#io.write !== undefined) {
      this.#io.write(text);
      this.#open = !text.endsWith('\n');
      return;
    }
    const lines = (this.#pending + text).split('\n');
    this.#pending = lines.pop() ?? '';
    for (const line of lines) this.#io.out(line);
  }

  /** Ends an open line of streamed text. */
  endLine(): void {
    if (this.#open) this.#io.write?.('\n');
    this.#open = false;
    if (this.#pending !== '') this.#io.out(this.#pending);
    this.#pending = '';
  }
}
