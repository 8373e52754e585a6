/**
 * The PostgreSQL agent store's change feed: the change-feed conformance suite with two stores
 * (two nodes) on one schema, plus what only PostgreSQL shows: the cheap check learns of other
 * writers through LISTEN, and says "maybe" while its listening connection is down.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgresStores, type PostgresStores } from '../../src/store/postgres/open.ts';
import { postgresStores } from '../support/postgres-stores.ts';
import { TEST_DATABASE_URL } from '../support/postgres.ts';
import { changeFeedConformance } from './change-feed.conformance.ts';

const T0 = Date.UTC(2026, 0, 1);
const spec = { labels: {}, tier: 'warm' };

/** Polls `condition` until it holds (an event to wait for, not a timing to assert); fails after 10 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`still waiting for ${what}`);
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

changeFeedConformance('PostgresAgentStore change feed', async () => {
  const first = await postgresStores();
  const second = await openPostgresStores({ databaseUrl: first.url, schema: first.schema });
  const extra: { close(): Promise<void> }[] = [];
  return {
    here: first.stores.agents,
    there: second.agents,
    openAgents: async (changeHistory) => {
      const s = await openPostgresStores({ databaseUrl: first.url, schema: first.schema, changeHistory });
      extra.push(s.runs, s.projects);
      return s.agents;
    },
    openRuns: async () => second.runs,
    countTombstones: async () => {
      const [row] = await admin(
        async (c) =>
          (await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${first.schema}.agent_tombstones`)).rows,
      );
      return Number(row?.n);
    },
    settle: () => first.stores.agents.changeFeed.caughtUp(),
    cleanup: async () => {
      await Promise.all([second.agents.close(), second.runs.close(), second.projects.close()]);
      await Promise.all(extra.map((s) => s.close()));
      await first.cleanup();
    },
  };
});

describe('PostgresAgentStore change feed, listening', () => {
  let here: Awaited<ReturnType<typeof postgresStores>>;
  let there: PostgresStores;

  beforeEach(async () => {
    here = await postgresStores();
    there = await openPostgresStores({ databaseUrl: here.url, schema: here.schema });
  });
  afterEach(async () => {
    await Promise.all([there.agents.close(), there.runs.close(), there.projects.close()]);
    await here.cleanup();
  });

  it("learns of another node's write from its notification, with no query of its own", async () => {
    const feed = here.stores.agents.changeFeed;
    const cursor = await feed.head();
    assert.equal(feed.listening, true);
    assert.equal(feed.maybeChangedSince(cursor), false);
    await there.agents.create({ id: 'agt_a', project: 'p1', name: 'a', spec, now: T0 });
    await until(() => feed.maybeChangedSince(cursor), 'the notification');
    const page = await feed.changesSince(cursor, 10);
    assert.deepEqual(
      page.changes.map((c) => c.name),
      ['a'],
    );
    assert.equal(feed.maybeChangedSince(page.cursor), false);
  });

  it('says "maybe" while its listening connection is down, and is exact again once it reconnected', async () => {
    const feed = here.stores.agents.changeFeed;
    const cursor = await feed.head();
    const pid = feed.listenerPid;
    assert.ok(pid !== null);
    await admin((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
    await until(() => !feed.listening, 'the listener to notice it was cut off');
    assert.equal(feed.maybeChangedSince(cursor), true, 'nothing can be heard: maybe');
    // Written while nobody listened: the reconnected listener re-reads the head and knows.
    await there.agents.create({ id: 'agt_b', project: 'p1', name: 'b', spec, now: T0 });
    await until(() => feed.listening, 'the listener to reconnect');
    assert.equal(feed.maybeChangedSince(cursor), true);
    const page = await feed.changesSince(cursor, 10);
    assert.deepEqual(
      page.changes.map((c) => c.name),
      ['b'],
    );
    assert.equal(feed.maybeChangedSince(page.cursor), false);
  });
});
