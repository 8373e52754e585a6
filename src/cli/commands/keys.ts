/**
 * `agentpool keys ls|create|revoke <project>`: a project's API keys on a running server, with
 * the admin key (`/v1/projects/{id}/keys`). A new key's secret is printed once, alone on stdout,
 * so it can be captured (`KEY=$(agentpool keys create acme)`); the server keeps only its hash.
 */
import type { Command } from 'commander';
import { AgentPoolClient, API_KEY_ENV, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { CLIENT_HELP, clientOptions, positiveInt } from '../options.ts';
import { formatTable, iso, printRecord } from '../output.ts';

/** Flags of `agentpool keys ls`. */
export interface KeysLsFlags extends ClientFlags {
  limit?: number;
  json?: boolean;
}

/** Flags of `agentpool keys create`. */
export interface KeysCreateFlags extends ClientFlags {
  name?: string;
  json?: boolean;
}

/** An API key as listings show it: never the secret. */
interface KeyView {
  id: string;
  project: string;
  prefix: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const keysPath = (project: string) => `/v1/projects/${encodeURIComponent(project)}/keys`;

/** Lists a project's keys, revoked ones included: ID, PREFIX, NAME, CREATED, LAST USED, REVOKED. */
export async function keysLsCommand(project: string, flags: KeysLsFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const page = await client.list<KeyView>(keysPath(project), {}, flags.limit);
  if (flags.json === true) {
    printRecord(io, page, true);
    return;
  }
  if (page.data.length === 0) {
    io.err(`no keys in project ${project}`);
    return;
  }
  const rows = page.data.map((k) => [
    k.id,
    `${k.prefix}…`,
    k.name === '' ? '-' : k.name,
    iso(k.createdAt),
    iso(k.lastUsedAt),
    iso(k.revokedAt),
  ]);
  for (const line of formatTable([['ID', 'PREFIX', 'NAME', 'CREATED', 'LAST USED', 'REVOKED'], ...rows])) {
    io.out(line);
  }
  if (flags.limit !== undefined && page.nextCursor !== null) {
    io.err('(more keys: raise --limit, or leave it out to list them all)');
  }
}

/** Issues a key: the secret alone on stdout, what it is on stderr (or the whole answer as JSON). */
export async function keysCreateCommand(project: string, flags: KeysCreateFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const created = await client.request<KeyView & { key: string }>('POST', keysPath(project), {
    body: flags.name === undefined ? {} : { name: flags.name },
  });
  if (flags.json === true) {
    printRecord(io, created, true);
    return;
  }
  io.out(created.key);
  io.err(
    `key ${created.id} of project ${created.project}: shown only now, keep it (use it as ${API_KEY_ENV}, or revoke it with \`agentpool keys revoke ${created.project} ${created.id}\`)`,
  );
}

/** Revokes a key; prints `revoked <keyId>`. Requests with it fail from now on. */
export async function keysRevokeCommand(
  project: string,
  keyId: string,
  flags: ClientFlags,
  io: CliIo,
): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  await client.request<undefined>('DELETE', `${keysPath(project)}/${encodeURIComponent(keyId)}`);
  io.out(`revoked ${keyId}`);
}

/** Adds `agentpool keys …` to the program. */
export function registerKeysCommand(program: Command, io: CliIo): void {
  const adminHelp = `${CLIENT_HELP}\nThese commands need the admin key (${API_KEY_ENV} set to it).`;
  const keys = program
    .command('keys')
    .description("list, issue and revoke a project's API keys (admin)")
    .addHelpText('after', adminHelp);

  clientOptions(
    keys
      .command('ls')
      .description("list a project's keys, revoked ones included (secrets are never shown)")
      .argument('<project>', 'project id')
      .option('--limit <n>', 'one page of at most n keys (default: all)', positiveInt('--limit', 1000))
      .option('--json', 'print the JSON ({ data, nextCursor }) instead'),
  )
    .addHelpText('after', adminHelp)
    .action(async (project: string, flags: KeysLsFlags) => {
      await keysLsCommand(project, flags, io);
    });

  clientOptions(
    keys
      .command('create')
      .description('issue a key for the project and print its secret (shown only this once)')
      .argument('<project>', 'project id')
      .option('--name <name>', 'a name to tell the key apart (e.g. "ci")')
      .option('--json', 'print the answer (with the secret) as JSON'),
  )
    .addHelpText('after', `${adminHelp}\n\nExample:\n  $ KEY=$(agentpool keys create acme --name ci)`)
    .action(async (project: string, flags: KeysCreateFlags) => {
      await keysCreateCommand(project, flags, io);
    });

  clientOptions(
    keys
      .command('revoke')
      .description('revoke a key: requests made with it fail from now on')
      .argument('<project>', 'project id')
      .argument('<keyId>', 'key id (key_…, from `agentpool keys ls`)'),
  )
    .addHelpText('after', adminHelp)
    .action(async (project: string, keyId: string, flags: ClientFlags) => {
      await keysRevokeCommand(project, keyId, flags, io);
    });
}
