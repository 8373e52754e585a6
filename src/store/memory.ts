/**
 * The in-memory AgentStore: for tests, examples and single-process deployments that need no
 * durability. It keeps sorted indexes so pages cost O(log n + page), like the SQLite adapter.
 * Specs are deep-copied on the way in and out, so no caller can mutate stored state.
 */
import { AgentPoolError, validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import { checkIndexedSpec } from './indexed-spec.ts';
import { boundedPage, decodeCursor, encodeCursor, pageLimit } from './paging.ts';
import type {
  AddVersionOptions,
  AgentRunTotals,
  AgentUsageRecord,
  ListUsageQuery,
  AgentRecord,
  AgentRollout,
  AgentStore,
  AgentUse,
  AgentVersionRecord,
  IndexedSpec,
  ListAgentsQuery,
  NewAgent,
  Page,
  SetRolloutOptions,
  StoredFlag,
} from './ports.ts';
import { bound, insertSorted, removeSorted } from './sorted-keys.ts';
import {
  addRunTotals,
  compareUsage,
  decodeUsageCursor,
  encodeUsageCursor,
  isAfterUsageCursor,
  zeroRunTotals,
} from './usage-paging.ts';
import {
  agentExists,
  agentNotFound,
  candidateIsActive,
  rolloutConflict,
  rolloutInProgress,
  versionConflict,
  versionNotFound,
} from './agent-store-shared.ts';

interface StoredVersion {
  readonly spec: IndexedSpec;
  readonly createdAt: number;
}

interface StoredAgent {
  readonly id: string;
  readonly project: string;
  readonly name: string;
  activeVersion: number;
  readonly createdAt: number;
  updatedAt: number;
  lastUsedAt: number;
  expiresAt: number | null;
  rollout: AgentRollout | null;
  /** Version n lives at index n - 1; versions are only ever appended. */
  readonly versions: StoredVersion[];
  /** Persisted usage once the agent was used (recordUse); goes with the agent. */
  usage?: { totals: AgentRunTotals; lastUsedAt: number };
}

interface ProjectIndex {
  readonly byName: Map<string, StoredAgent>;
  /**
   * Names in ascending order, kept sorted on insert and delete so pages need no sort. JS order
   * (UTF-16 units) matches SQLite's BINARY (UTF-8 bytes) except astral vs U+E000..U+FFFF characters.
   */
  readonly names: string[];
}

function expiresAt(spec: IndexedSpec, now: number): number | null {
  return typeof spec.ttlSeconds === 'number' ? now + spec.ttlSeconds * 1000 : null;
}

function hasLabels(spec: IndexedSpec, wanted: readonly (readonly [string, string])[]): boolean {
  for (const [k, v] of wanted) {
    if (!Object.hasOwn(spec.labels, k) || spec.labels[k] !== v) return false;
  }
  return true;
}

/** An AgentStore held in process memory; nothing survives the process. */
export class MemoryAgentStore implements AgentStore {
  #closed = false;
  readonly #byId = new Map<string, StoredAgent>();
  readonly #projects = new Map<string, ProjectIndex>();
  /** Agent ids per tier, ascending, for prewarm listings. */
  readonly #tiers = new Map<string, string[]>();

  async create<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    agent: NewAgent<S>,
  ): Promise<AgentRecord<S, F>> {
    this.#assertOpen();
    checkIndexedSpec(agent.spec);
    // No await between these checks and the writes: that is what makes concurrent creates atomic.
    if (this.#byId.has(agent.id)) {
      throw agentExists(agent, false);
    }
    const project = this.#project(agent.project);
    if (project.byName.has(agent.name)) {
      throw agentExists(agent, true);
    }
    const spec = structuredClone(agent.spec);
    const stored: StoredAgent = {
      id: agent.id,
      project: agent.project,
      name: agent.name,
      activeVersion: 1,
      createdAt: agent.now,
      updatedAt: agent.now,
      lastUsedAt: agent.now,
      expiresAt: expiresAt(spec, agent.now),
      rollout: null,
      versions: [{ spec, createdAt: agent.now }],
    };
    this.#byId.set(stored.id, stored);
    project.byName.set(stored.name, stored);
    insertSorted(project.names, stored.name);
    this.#indexTier(spec.tier, stored.id);
    return this.#record(stored);
  }

  async getById<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    this.#assertOpen();
    const stored = this.#byId.get(id);
    return stored && this.#record(stored);
  }

  async getByName<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    name: string,
  ): Promise<AgentRecord<S, F> | undefined> {
    this.#assertOpen();
    const stored = this.#projects.get(project)?.byName.get(name);
    return stored && this.#record(stored);
  }

  async list<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    project: string,
    query: ListAgentsQuery,
  ): Promise<Page<AgentRecord<S, F>>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const start = query.cursor === undefined ? undefined : decodeCursor('name', query.cursor);
    const wanted = Object.entries(query.labels ?? {});
    const q = query.q ?? '';
    const index = this.#projects.get(project);
    if (index === undefined) return { data: [], nextCursor: null };
    const matching = function* (this: MemoryAgentStore): Generator<StoredAgent> {
      for (let i = start === undefined ? 0 : bound(index.names, start, false); i < index.names.length; i++) {
        const name = index.names[i] as string;
        if (q !== '' && !name.includes(q)) continue;
        const stored = index.byName.get(name) as StoredAgent;
        if (wanted.length === 0 || hasLabels(this.#activeSpec(stored), wanted)) yield stored;
      }
    };
    return boundedPage(
      matching.call(this),
      limit,
      (stored) => this.#record<S, F>(stored),
      (stored) => encodeCursor('name', stored.name),
    );
  }

  async listByTier<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    tier: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentRecord<S, F>>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const ids = this.#tiers.get(tier) ?? [];
    const from = query.cursor === undefined ? 0 : bound(ids, decodeCursor('tier', query.cursor), false);
    const slice = ids.slice(from, from + limit);
    const data = slice.map((id) => this.#record<S, F>(this.#byId.get(id) as StoredAgent));
    const more = from + limit < ids.length;
    return { data, nextCursor: more ? encodeCursor('tier', slice[slice.length - 1] as string) : null };
  }

  async count(project: string): Promise<number> {
    this.#assertOpen();
    return this.#projects.get(project)?.names.length ?? 0;
  }

  async addVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedLatest: number,
    spec: S,
    now: number,
    options: AddVersionOptions<F> = {},
  ): Promise<AgentRecord<S, F>> {
    this.#assertOpen();
    checkIndexedSpec(spec);
    const stored = this.#mustGet(id);
    const latest = stored.versions.length;
    if (latest !== expectedLatest) {
      throw versionConflict(id, expectedLatest, latest);
    }
    if (stored.rollout !== null) throw rolloutInProgressOf(stored);
    // Copy before the first write, so a value that cannot be cloned writes nothing.
    const copy = structuredClone(spec);
    const flag = options.rollout === undefined ? undefined : structuredClone(options.rollout);
    stored.versions.push({ spec: copy, createdAt: now });
    if (flag === undefined) {
      this.#activate(stored, stored.versions.length, now);
    } else {
      stored.rollout = { candidateVersion: stored.versions.length, flag, startedAt: now, flagStartedAt: now };
      stored.updatedAt = now;
    }
    return this.#record(stored);
  }

  async activateVersion<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    version: number,
    now: number,
  ): Promise<AgentRecord<S, F>> {
    this.#assertOpen();
    const stored = this.#mustGet(id);
    this.#mustHaveVersion(stored, version);
    if (stored.rollout !== null && version !== stored.activeVersion) throw rolloutInProgressOf(stored);
    this.#activate(stored, version, now);
    return this.#record(stored);
  }

  async setRollout<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    id: string,
    expectedCandidate: number | null,
    rollout: AgentRollout<F> | null,
    now: number,
    options: SetRolloutOptions = {},
  ): Promise<AgentRecord<S, F>> {
    this.#assertOpen();
    const stored = this.#mustGet(id);
    const running = stored.rollout?.candidateVersion ?? null;
    if (running !== expectedCandidate) {
      throw rolloutConflict(id, expectedCandidate, running);
    }
    const activate = options.activate;
    if (activate !== undefined) this.#mustHaveVersion(stored, activate);
    const copy = rollout === null ? null : structuredClone(rollout);
    if (copy !== null) {
      this.#mustHaveVersion(stored, copy.candidateVersion);
      if (copy.candidateVersion === (activate ?? stored.activeVersion)) {
        throw candidateIsActive(copy.candidateVersion);
      }
    }
    stored.rollout = copy;
    if (activate !== undefined && activate !== stored.activeVersion) this.#activate(stored, activate, now);
    else stored.updatedAt = now;
    return this.#record(stored);
  }

  async getVersion<S extends IndexedSpec>(
    id: string,
    version: number,
  ): Promise<AgentVersionRecord<S> | undefined> {
    this.#assertOpen();
    const stored = this.#byId.get(id);
    const v = Number.isInteger(version) && version >= 1 ? stored?.versions[version - 1] : undefined;
    return v && { agentId: id, version, spec: structuredClone(v.spec) as S, createdAt: v.createdAt };
  }

  async listVersions<S extends IndexedSpec>(
    id: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<AgentVersionRecord<S>>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const versions = this.#byId.get(id)?.versions ?? [];
    let below = versions.length + 1;
    if (query.cursor !== undefined) {
      below = Number(decodeCursor('version', query.cursor));
      if (!Number.isInteger(below)) throw validationError('cursor', 'is not a cursor of this listing');
    }
    const newestFirst = function* (): Generator<number> {
      for (let v = Math.min(below, versions.length + 1) - 1; v >= 1; v--) yield v;
    };
    return boundedPage(
      newestFirst(),
      limit,
      (v): AgentVersionRecord<S> => {
        const stored = versions[v - 1] as StoredVersion;
        return {
          agentId: id,
          version: v,
          spec: structuredClone(stored.spec) as S,
          createdAt: stored.createdAt,
        };
      },
      (v) => encodeCursor('version', String(v)),
    );
  }

  async delete(id: string): Promise<boolean> {
    this.#assertOpen();
    const stored = this.#byId.get(id);
    if (stored === undefined) return false;
    this.#remove(stored);
    return true;
  }

  async deleteProjectAgents(project: string, limit: number): Promise<number> {
    this.#assertOpen();
    const max = pageLimit(limit);
    const index = this.#projects.get(project);
    if (index === undefined) return 0;
    // The batch is the first names: one splice, not one shifting removal per agent.
    const batch = index.names.splice(0, max);
    for (const name of batch) {
      const stored = index.byName.get(name) as StoredAgent;
      index.byName.delete(name);
      this.#byId.delete(stored.id);
      this.#unindexTier(this.#activeSpec(stored).tier, stored.id);
    }
    if (index.names.length === 0) this.#projects.delete(project);
    return batch.length;
  }

  /** Takes an agent out of every index; its versions go with it. */
  #remove(stored: StoredAgent): void {
    const id = stored.id;
    this.#byId.delete(id);
    const project = this.#projects.get(stored.project) as ProjectIndex;
    project.byName.delete(stored.name);
    removeSorted(project.names, stored.name);
    if (project.names.length === 0) this.#projects.delete(stored.project);
    this.#unindexTier(this.#activeSpec(stored).tier, id);
  }

  async touch(id: string, at: number): Promise<void> {
    this.#assertOpen();
    const stored = this.#mustGet(id);
    stored.lastUsedAt = at;
    stored.expiresAt = expiresAt(this.#activeSpec(stored), at);
  }

  async recordUse(uses: readonly AgentUse[]): Promise<void> {
    this.#assertOpen();
    for (const { id, at, runs } of uses) {
      const stored = this.#byId.get(id);
      if (stored === undefined) continue;
      const usage = (stored.usage ??= { totals: zeroRunTotals(), lastUsedAt: at });
      if (runs !== undefined) usage.totals = addRunTotals(usage.totals, runs);
      if (at > usage.lastUsedAt) usage.lastUsedAt = at;
      if (at <= stored.lastUsedAt) continue;
      stored.lastUsedAt = at;
      stored.expiresAt = expiresAt(this.#activeSpec(stored), at);
    }
  }

  async getUsage(id: string): Promise<AgentUsageRecord | undefined> {
    this.#assertOpen();
    const stored = this.#byId.get(id);
    return stored === undefined ? undefined : usageOf(stored);
  }

  async listUsage(query: ListUsageQuery): Promise<Page<AgentUsageRecord>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const { sort } = query;
    const after = query.cursor === undefined ? undefined : decodeUsageCursor(sort, query.cursor);
    // A full scan and sort: this adapter is for small catalogues.
    const source =
      query.project === undefined
        ? this.#byId.values()
        : (this.#projects.get(query.project)?.byName.values() ?? []);
    const rows: AgentUsageRecord[] = [];
    for (const stored of source) {
      const record = usageOf(stored);
      if (record !== undefined && (after === undefined || isAfterUsageCursor(sort, record, after)))
        rows.push(record);
    }
    rows.sort((a, b) => compareUsage(sort, a, b));
    return boundedPage(
      rows,
      limit,
      (r) => r,
      (r) => encodeUsageCursor(sort, r),
    );
  }

  async listExpired<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(
    now: number,
    limit: number,
  ): Promise<AgentRecord<S, F>[]> {
    this.#assertOpen();
    const max = intOption('limit', limit, 100, 1);
    // A full scan is fine here: this adapter is for small catalogues and the sweep runs rarely.
    const due: StoredAgent[] = [];
    for (const stored of this.#byId.values()) {
      if (stored.expiresAt !== null && stored.expiresAt <= now) due.push(stored);
    }
    due.sort((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || (a.id < b.id ? -1 : 1));
    return due.slice(0, max).map((s) => this.#record<S, F>(s));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#byId.clear();
    this.#projects.clear();
    this.#tiers.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'MemoryAgentStore is closed');
  }

  #mustGet(id: string): StoredAgent {
    const stored = this.#byId.get(id);
    if (stored === undefined) throw agentNotFound(id);
    return stored;
  }

  #mustHaveVersion(stored: StoredAgent, version: number): void {
    if (!Number.isInteger(version) || version < 1 || version > stored.versions.length) {
      throw versionNotFound(stored.id, version);
    }
  }

  #project(name: string): ProjectIndex {
    let index = this.#projects.get(name);
    if (index === undefined) {
      index = { byName: new Map(), names: [] };
      this.#projects.set(name, index);
    }
    return index;
  }

  #activeSpec(stored: StoredAgent): IndexedSpec {
    return (stored.versions[stored.activeVersion - 1] as StoredVersion).spec;
  }

  #activate(stored: StoredAgent, version: number, now: number): void {
    const before = this.#activeSpec(stored).tier;
    stored.activeVersion = version;
    stored.updatedAt = now;
    const spec = this.#activeSpec(stored);
    stored.expiresAt = expiresAt(spec, now);
    if (spec.tier !== before) {
      this.#unindexTier(before, stored.id);
      this.#indexTier(spec.tier, stored.id);
    }
  }

  #indexTier(tier: string, id: string): void {
    let ids = this.#tiers.get(tier);
    if (ids === undefined) {
      ids = [];
      this.#tiers.set(tier, ids);
    }
    insertSorted(ids, id);
  }

  #unindexTier(tier: string, id: string): void {
    const ids = this.#tiers.get(tier);
    if (ids === undefined) return;
    removeSorted(ids, id);
    if (ids.length === 0) this.#tiers.delete(tier);
  }

  #record<S extends IndexedSpec, F extends StoredFlag = StoredFlag>(stored: StoredAgent): AgentRecord<S, F> {
    return {
      id: stored.id,
      project: stored.project,
      name: stored.name,
      activeVersion: stored.activeVersion,
      latestVersion: stored.versions.length,
      spec: structuredClone(this.#activeSpec(stored)) as S,
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
      lastUsedAt: stored.lastUsedAt,
      expiresAt: stored.expiresAt,
      rollout: stored.rollout === null ? null : (structuredClone(stored.rollout) as AgentRollout<F>),
    };
  }
}

function rolloutInProgressOf(stored: StoredAgent): AgentPoolError {
  return rolloutInProgress(stored.id, stored.rollout?.candidateVersion ?? 0, stored.activeVersion);
}

function usageOf(stored: StoredAgent): AgentUsageRecord | undefined {
  const usage = stored.usage;
  if (usage === undefined) return undefined;
  return {
    agentId: stored.id,
    project: stored.project,
    name: stored.name,
    lastUsedAt: usage.lastUsedAt,
    ...usage.totals,
  };
}
