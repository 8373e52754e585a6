/**
 * Which agent tends to follow which: when agent B's run on a thread starts within
 * `followWindowMs` after agent A's run on it finished, B followed A once. Counts are halved every
 * `decayIntervalMs` (habits change), and B is prefetched when A is acquired once B followed A at
 * least `minFollows` times and makes at least `minConfidence` of what followed A.
 *
 * Bounded three ways: threads remembered (`maxThreads`, the least recent leaves), agents whose
 * followers are tracked (`maxTrackedAgents`, the least recently followed-from leaves), and
 * followers per agent (`maxFollowers`, the least followed leaves). Learning costs a few Map
 * operations per finished run on a thread; asking costs one Map lookup per acquire.
 */

import { OldestKey } from '../core/oldest-key.ts';

/** An agent as the table names it. */
export interface AgentRef {
  readonly project: string;
  readonly id: string;
  readonly name: string;
}

/** The bounds and thresholds of the table (see PreloadOptions). */
export interface FollowTableOptions {
  followWindowMs: number;
  minFollows: number;
  minConfidence: number;
  maxTrackedAgents: number;
  maxFollowers: number;
  maxThreads: number;
}

interface Follower {
  readonly agent: AgentRef;
  count: number;
}

interface Entry {
  /** Follows out of this agent, decayed like the counts. */
  total: number;
  readonly followers: Map<string, Follower>;
  /** The followers past both thresholds, most followed first: what an acquire prefetches. */
  ready: readonly AgentRef[] | undefined;
}

/** The last run on a thread. */
interface LastOnThread {
  readonly agent: AgentRef;
  readonly finishedAt: number;
}

/** Follow counts between agents, learned from runs on threads. */
export class FollowTable {
  readonly #options: FollowTableOptions;
  readonly #threads = new Map<string, LastOnThread>();
  readonly #entries = new Map<string, Entry>();
  // Both maps are kept in use order and evict from the front, on the run path once full.
  readonly #oldestThread = new OldestKey(this.#threads);
  readonly #oldestEntry = new OldestKey(this.#entries);

  constructor(options: FollowTableOptions) {
    this.#options = options;
  }

  /** Agents whose followers are tracked. */
  get trackedAgents(): number {
    return this.#entries.size;
  }

  /** Threads whose last agent is remembered. */
  get trackedThreads(): number {
    return this.#threads.size;
  }

  /** Learns from a finished run of `agent` on `threadId`, accepted at `createdAt`. */
  observe(threadId: string, agent: AgentRef, createdAt: number, finishedAt: number): void {
    const threads = this.#threads;
    const last = threads.get(threadId);
    if (last !== undefined) {
      threads.delete(threadId); // re-inserted below: the Map's order is least recent first
      if (
        last.agent.id !== agent.id &&
        last.agent.project === agent.project &&
        createdAt - last.finishedAt <= this.#options.followWindowMs
      ) {
        this.#follow(last.agent, agent);
      }
    } else if (threads.size >= this.#options.maxThreads) {
      this.#oldestThread.evict();
    }
    threads.set(threadId, { agent, finishedAt });
  }

  /** The agents to prefetch when `agentId` is acquired, most followed first; undefined when none. */
  next(agentId: string): readonly AgentRef[] | undefined {
    return this.#entries.get(agentId)?.ready;
  }

  /** How often each agent followed `agentId` (after decay), most first. */
  followers(agentId: string): { agent: AgentRef; count: number }[] {
    const entry = this.#entries.get(agentId);
    if (entry === undefined) return [];
    return [...entry.followers.values()]
      .map((f) => ({ agent: f.agent, count: f.count }))
      .sort((a, b) => b.count - a.count);
  }

  /** Halves every count; followers and agents left with less than half a follow are forgotten. */
  decay(): void {
    for (const [id, entry] of this.#entries) {
      entry.total /= 2;
      for (const [key, f] of entry.followers) {
        f.count /= 2;
        if (f.count < 0.5) entry.followers.delete(key);
      }
      if (entry.followers.size === 0) this.#entries.delete(id);
      else this.#rank(entry);
    }
  }

  /** Forgets a deleted project's agents and threads. */
  forgetProject(project: string): void {
    for (const [key, last] of this.#threads) if (last.agent.project === project) this.#threads.delete(key);
    for (const [id, entry] of this.#entries) {
      const first = entry.followers.values().next().value;
      if (first?.agent.project === project) this.#entries.delete(id);
    }
  }

  #follow(from: AgentRef, to: AgentRef): void {
    let entry = this.#entries.get(from.id);
    if (entry === undefined) {
      if (this.#entries.size >= this.#options.maxTrackedAgents) {
        this.#oldestEntry.evict();
      }
      entry = { total: 0, followers: new Map(), ready: undefined };
    } else {
      this.#entries.delete(from.id); // re-inserted: most recently followed-from last
    }
    this.#entries.set(from.id, entry);
    entry.total++;
    const follower = entry.followers.get(to.id);
    if (follower !== undefined) follower.count++;
    else {
      if (entry.followers.size >= this.#options.maxFollowers) {
        let least: string | undefined;
        let min = Number.POSITIVE_INFINITY;
        for (const [key, f] of entry.followers) {
          if (f.count < min) {
            min = f.count;
            least = key;
          }
        }
        if (least !== undefined) entry.followers.delete(least);
      }
      entry.followers.set(to.id, { agent: to, count: 1 });
    }
    this.#rank(entry);
  }

  #rank(entry: Entry): void {
    const { minFollows, minConfidence } = this.#options;
    const ready = [...entry.followers.values()]
      .filter((f) => f.count >= minFollows && f.count >= minConfidence * entry.total)
      .sort((a, b) => b.count - a.count)
      .map((f) => f.agent);
    entry.ready = ready.length === 0 ? undefined : ready;
  }
}
