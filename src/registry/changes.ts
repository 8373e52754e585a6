/**
 * Definitions changed by other processes on the same store (`agentpool apply -f` next to a running
 * server, a second server): the registry reads the store's change feed and announces each change
 * on the bus, as it does for its own writes, so the pool retires instances of stale versions.
 * Reading is cheap enough for the start of every run: the feed says synchronously whether anything
 * may have changed, and only then are the changes read.
 */
import type { EventSink } from '../events/bus.ts';
import type { FlagStrategy } from '../governance/flags.ts';
import type { AgentChange, AgentChangeFeed, AgentChangePage } from '../store/ports.ts';
import type { AgentEvent } from './agent.ts';

/** Changes read per store call while catching up. */
const PAGE = 500;

/** Follows a store's change feed and announces what other writers changed. */
export class ChangeWatcher {
  readonly #feed: AgentChangeFeed;
  readonly #bus: EventSink<AgentEvent>;
  readonly #now: () => number;
  /** Changes up to here are announced (or predate this watcher); undefined until the head is read. */
  #cursor: string | undefined;
  #reading: Promise<void> | undefined;
  /** Set when asked again while reading: a commit may have landed after the read's query. */
  #again = false;

  constructor(feed: AgentChangeFeed, bus: EventSink<AgentEvent>, now: () => number) {
    this.#feed = feed;
    this.#bus = bus;
    this.#now = now;
  }

  /**
   * Announces the changes made since the last call; undefined (synchronously, no promise) when the
   * feed says nothing can have changed, which is the common case and costs about a microsecond.
   * The first call only reads where the feed stands: what changed before is already in the store.
   */
  check(): Promise<void> | undefined {
    if (this.#reading !== undefined) {
      this.#again = true;
      return this.#reading;
    }
    const cursor = this.#cursor;
    if (cursor !== undefined && !this.#feed.maybeChangedSince(cursor)) return undefined;
    const reading = this.#read().finally(() => {
      this.#reading = undefined;
    });
    this.#reading = reading;
    return reading;
  }

  async #read(): Promise<void> {
    do {
      this.#again = false;
      if (this.#cursor === undefined) {
        this.#cursor = await this.#feed.head();
        continue;
      }
      let cursor: string = this.#cursor;
      let more = true;
      while (more) {
        const page: AgentChangePage<FlagStrategy> = await this.#feed.changesSince(cursor, PAGE);
        if (!page.complete) this.#announceLost(cursor);
        for (const change of page.changes) this.#announce(change);
        this.#cursor = cursor = page.cursor;
        more = page.more;
      }
    } while (this.#again);
  }

  #announce(change: AgentChange<FlagStrategy>): void {
    const about = { at: this.#now(), project: change.project, agentId: change.id, name: change.name };
    if (change.type === 'deleted') {
      this.#bus.emit({ type: 'agent.deleted', ...about, reason: 'deleted' });
    } else if (change.latestVersion === 1) {
      // Only a create leaves an agent at version 1 (any other write adds or needs a second version).
      this.#bus.emit({ type: 'agent.created', ...about, version: 1 });
    } else {
      this.#bus.emit({
        type: 'agent.changed',
        ...about,
        activeVersion: change.activeVersion,
        latestVersion: change.latestVersion,
        rollout: change.rollout,
      });
    }
  }

  #announceLost(cursor: string): void {
    this.#bus.emit({ type: 'agent.changes_lost', at: this.#now(), after: cursor });
  }
}
