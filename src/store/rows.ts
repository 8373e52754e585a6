/**
 * Rows of the tables the SQL stores share (SQLite, sqlite-schema.ts; PostgreSQL, postgres/
 * migrations.ts: the same columns) and the records they hold. One exception: PostgreSQL keeps a
 * run's input and output JSON-encoded (migrations.ts says why), so {@link toRun} takes how its
 * store reads them.
 */
import type {
  AgentRecord,
  AgentRollout,
  AgentVersionRecord,
  IndexedSpec,
  MessageRecord,
  MessageRole,
  RunRecord,
  RunStatus,
  StoredFlag,
  ThreadRecord,
} from './ports.ts';
import type { ApiKeyInfo, ApiKeyRecord, ProjectLimits, ProjectRecord } from './project-ports.ts';

/** A row of `agents`. */
export interface AgentRow {
  id: string;
  project: string;
  name: string;
  active_version: number;
  latest_version: number;
  spec: string;
  tier: string;
  ttl_seconds: number | null;
  created_at: number;
  updated_at: number;
  last_used_at: number;
  expires_at: number | null;
  /** JSON of the rollout, or null. */
  rollout: string | null;
  /** The change-feed revision of the last definition write (0: before the feed existed). */
  revision: number;
  /** The store instance that made that write (0: unknown). */
  writer: number;
}

/** A row of `agent_versions`. */
export interface VersionRow {
  agent_id: string;
  version: number;
  spec: string;
  created_at: number;
}

/** A row of `threads`. */
export interface ThreadRow {
  id: string;
  project: string;
  metadata: string;
  ttl_seconds: number | null;
  expires_at: number | null;
  message_count: number;
  /** The thread's fencing token; absent from rows written without one (the column defaults to 0). */
  fence?: number;
  created_at: number;
  updated_at: number;
}

/** A row of `messages`. */
export interface MessageRow {
  thread_id: string;
  seq: number;
  id: string;
  role: string;
  content: string;
  run_id: string | null;
  created_at: number;
}

/** A row of `runs`. */
export interface RunRow {
  id: string;
  project: string;
  agent_id: string;
  agent_name: string;
  agent_version: number;
  thread_id: string | null;
  status: string;
  input: string;
  output: string | null;
  model: string;
  steps: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
  error: string | null;
  metadata: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** The node that created or last committed it; null on a single node. */
  node_id: string | null;
}

/** A row of `projects`. */
export interface ProjectRow {
  id: string;
  name: string;
  metadata: string;
  limits: string;
  created_at: number;
}

/** A row of `api_keys`. */
export interface ApiKeyRow {
  id: string;
  project: string;
  prefix: string;
  key_hash: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export function toAgent<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
  row: AgentRow,
): AgentRecord<S, F> {
  return {
    id: row.id,
    project: row.project,
    name: row.name,
    activeVersion: row.active_version,
    latestVersion: row.latest_version,
    spec: JSON.parse(row.spec) as S,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    rollout: row.rollout === null ? null : (JSON.parse(row.rollout) as AgentRollout<F>),
  };
}

export function toVersion<S extends IndexedSpec>(row: VersionRow): AgentVersionRecord<S> {
  return {
    agentId: row.agent_id,
    version: row.version,
    spec: JSON.parse(row.spec) as S,
    createdAt: row.created_at,
  };
}

export function toThread(row: ThreadRow): ThreadRecord {
  return {
    id: row.id,
    project: row.project,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    ttlSeconds: row.ttl_seconds,
    expiresAt: row.expires_at,
    messageCount: row.message_count,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toMessage(row: MessageRow): MessageRecord {
  return {
    id: row.id,
    threadId: row.thread_id,
    seq: row.seq,
    role: row.role as MessageRole,
    content: JSON.parse(row.content) as unknown,
    runId: row.run_id,
    createdAt: row.created_at,
  };
}

/** Reads a run's input or output as its store keeps it: as is (SQLite), or JSON-encoded (PostgreSQL). */
const asIs = (text: string): string => text;

export function toRun(row: RunRow, text: (stored: string) => string = asIs): RunRecord {
  return {
    id: row.id,
    project: row.project,
    agentId: row.agent_id,
    agentName: row.agent_name,
    agentVersion: row.agent_version,
    threadId: row.thread_id,
    status: row.status as RunStatus,
    input: text(row.input),
    output: row.output === null ? null : text(row.output),
    model: row.model,
    steps: row.steps,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    cost: row.cost,
    error: row.error === null ? null : (JSON.parse(row.error) as RunRecord['error']),
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function toProject(row: ProjectRow): ProjectRecord {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.created_at,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    limits: JSON.parse(row.limits) as ProjectLimits,
  };
}

export function toKeyInfo(row: ApiKeyRow): ApiKeyInfo {
  return {
    id: row.id,
    project: row.project,
    prefix: row.prefix,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export function toKey(row: ApiKeyRow): ApiKeyRecord {
  return { ...toKeyInfo(row), keyHash: row.key_hash };
}
