/**
 * `agentpool threads create|get|messages|rm`: a running server's conversation threads over its
 * HTTP API (`POST /v1/threads`, `GET|DELETE /v1/threads/{id}`, `GET /v1/threads/{id}/messages`).
 */
import type { Command } from 'commander';
import { AgentPoolClient, ApiError, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions, jsonObject, positiveInt } from '../options.ts';
import { iso, printRecord } from '../output.ts';

/** Flags of `agentpool threads create`. */
export interface ThreadsCreateFlags extends ClientFlags {
  metadata?: Record<string, unknown>;
  ttlSeconds?: number;
  json?: boolean;
}

/** Flags of `agentpool threads get`. */
export interface ThreadsGetFlags extends ClientFlags {
  json?: boolean;
}

/** Flags of `agentpool threads messages`. */
export interface ThreadsMessagesFlags extends ClientFlags {
  limit?: number;
  json?: boolean;
}

/** The parts of a thread (the `Thread` schema) the commands print. */
interface ThreadView {
  id: string;
  project: string;
  metadata: Record<string, unknown>;
  ttlSeconds: number | null;
  expiresAt: number | null;
  messageCount: number;
  createdAt: number;
  updatedAt: number;
}

/** A message as the server sends it: `content` is a string or a list of parts. */
interface MessageView {
  seq: number;
  role: string;
  content: unknown;
  runId: string | null;
}

/** How much of a tool call's input or a tool's output a message line shows. */
const MAX_PART_JSON = 200;

const threadPath = (id: string) => `/v1/threads/${encodeURIComponent(id)}`;

/** Creates a thread and prints its id (alone, so `$(agentpool threads create)` works), or the JSON. */
export async function threadsCreateCommand(flags: ThreadsCreateFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const thread = await client.request<ThreadView>('POST', '/v1/threads', {
    body: {
      ...(flags.metadata !== undefined && { metadata: flags.metadata }),
      ...(flags.ttlSeconds !== undefined && { ttlSeconds: flags.ttlSeconds }),
    },
  });
  if (flags.json === true) printRecord(io, thread, true);
  else io.out(thread.id);
}

/** Prints a thread: id, project, message count, ttl and times (YAML), or the JSON. */
export async function threadsGetCommand(id: string, flags: ThreadsGetFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const thread = await client.request<ThreadView>('GET', threadPath(id));
  if (flags.json === true) {
    printRecord(io, thread, true);
    return;
  }
  printRecord(
    io,
    {
      id: thread.id,
      project: thread.project,
      messages: thread.messageCount,
      ttlSeconds: thread.ttlSeconds,
      createdAt: iso(thread.createdAt),
      updatedAt: iso(thread.updatedAt),
      expiresAt: thread.expiresAt === null ? null : iso(thread.expiresAt),
      metadata: thread.metadata,
    },
    false,
  );
}

/** Prints a thread's messages in order, one line each (`#3 tool  ← calculator: …`), or the JSON. */
export async function threadsMessagesCommand(
  id: string,
  flags: ThreadsMessagesFlags,
  io: CliIo,
): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const page = await client.list<MessageView>(`${threadPath(id)}/messages`, {}, flags.limit);
  if (flags.json === true) {
    printRecord(io, page, true);
    return;
  }
  if (page.data.length === 0) io.err('no messages');
  for (const message of page.data) for (const line of formatMessage(message)) io.out(line);
  if (flags.limit !== undefined && page.nextCursor !== null) {
    io.err('(more messages: raise --limit, or leave it out to list them all)');
  }
}

/** Deletes a thread with its messages and runs; prints `deleted <id>`. */
export async function threadsRmCommand(id: string, flags: ClientFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  try {
    await client.request<undefined>('DELETE', threadPath(id));
  } catch (err) {
    if (err instanceof ApiError && err.code === 'THREAD_BUSY') {
      throw err.withHint(
        'a run holds the thread: wait for it, or stop it with `agentpool runs cancel <run>`',
      );
    }
    throw err;
  }
  io.out(`deleted ${id}`);
}

/**
 * One message as lines: `#<seq> <role>` and its parts, text as it is (continuation lines indented),
 * tool calls as `→ name(input)`, tool results as `← name: output`.
 */
export function formatMessage(message: MessageView): string[] {
  const head = `#${message.seq} ${message.role.padEnd(9)}`;
  const indent = ' '.repeat(head.length + 1);
  const parts = typeof message.content === 'string' ? [message.content] : asParts(message.content);
  const lines: string[] = [];
  for (const part of parts) {
    for (const line of part.split('\n'))
      lines.push(`${lines.length === 0 ? head : indent} ${line}`.trimEnd());
  }
  return lines.length === 0 ? [head.trimEnd()] : lines;
}

function asParts(content: unknown): string[] {
  if (!Array.isArray(content)) return [clip(JSON.stringify(content) ?? '')];
  return content.map((part: unknown) => {
    const p = (typeof part === 'object' && part !== null ? part : {}) as Record<string, unknown>;
    switch (p.type) {
      case 'text':
      case 'reasoning':
        return typeof p.text === 'string' ? p.text : '';
      case 'tool-call':
        return `→ ${String(p.toolName)}(${clip(JSON.stringify(p.input) ?? '')})`;
      case 'tool-result': {
        const output = p.output as { value?: unknown } | undefined;
        const value =
          typeof output === 'object' && output !== null && 'value' in output ? output.value : output;
        return `← ${String(p.toolName)}: ${clip(JSON.stringify(value) ?? '')}`;
      }
      default:
        return clip(JSON.stringify(part) ?? '');
    }
  });
}

function clip(text: string): string {
  return text.length <= MAX_PART_JSON ? text : `${text.slice(0, MAX_PART_JSON - 1)}…`;
}

/** Adds `agentpool threads …` to the program. */
export function registerThreadsCommand(program: Command, io: CliIo): void {
  const threads = program
    .command('threads')
    .description("create, show, read and delete a running server's conversation threads")
    .addHelpText('after', CLIENT_HELP);

  clientOptions(
    threads
      .command('create')
      .description('create a thread and print its id (run on it with `agentpool run … --thread <id>`)')
      .option('--metadata <json>', 'free-form JSON object kept with the thread', jsonObject('--metadata'))
      .option(
        '--ttl-seconds <n>',
        'delete the thread after this long without a new message',
        positiveInt('--ttl-seconds', 2_147_483_647),
      )
      .option('--json', 'print the thread as JSON instead of its id'),
  )
    .addHelpText('after', `${CLIENT_HELP}\n\nExample:\n  $ THREAD=$(agentpool threads create)`)
    .action(async (flags: ThreadsCreateFlags) => {
      await threadsCreateCommand(flags, io);
    });

  clientOptions(
    threads
      .command('get')
      .description('show a thread: project, message count, ttl, times, metadata')
      .argument('<id>', 'thread id (thr_…)')
      .option('--json', 'print the JSON instead'),
  )
    .addHelpText('after', CLIENT_HELP)
    .action(async (id: string, flags: ThreadsGetFlags) => {
      await threadsGetCommand(id, flags, io);
    });

  clientOptions(
    threads
      .command('messages')
      .description("print a thread's messages in order: text, tool calls (→) and results (←)")
      .argument('<id>', 'thread id (thr_…)')
      .option('--limit <n>', 'the first n messages only (default: all)', positiveInt('--limit', 1000))
      .option('--json', 'print the JSON ({ data, nextCursor }) instead'),
  )
    .addHelpText('after', CLIENT_HELP)
    .action(async (id: string, flags: ThreadsMessagesFlags) => {
      await threadsMessagesCommand(id, flags, io);
    });

  clientOptions(
    threads
      .command('rm')
      .description('delete a thread with its messages and runs (refused while a run holds it)')
      .argument('<id>', 'thread id (thr_…)'),
  )
    .addHelpText('after', CLIENT_HELP)
    .action(async (id: string, flags: ClientFlags) => {
      await threadsRmCommand(id, flags, io);
    });
}
