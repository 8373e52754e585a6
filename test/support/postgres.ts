/**
 * PostgreSQL for tests: the machine's server (127.0.0.1:5432, user postgres, trust auth, or
 * AGENTPOOL_TEST_DATABASE_URL naming any database of it), a fresh database per test, dropped by
 * the returned cleanup. A missing server fails the test (never skips it).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database of the server the tests use (any one: it is only used to create and drop others). */
export const TEST_DATABASE_URL =
  process.env['AGENTPOOL_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Creates an empty database; its URL and a cleanup that drops it (ending its connections). */
export async function testDatabase(label = 'test'): Promise<{ url: string; cleanup: () => Promise<void> }> {
  const name = `agentpool_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`the tests need PostgreSQL at ${TEST_DATABASE_URL}: ${String(err)}`, { cause: err });
  }
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    cleanup: async () => {
      const dropper = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * A fresh schema in the tests' database, for one test: cheaper than a database (the conformance
 * suites open hundreds), as isolated for agentpool, whose stores take a `schema`. The cleanup
 * drops it with everything in it.
 */
export async function testSchema(
  label = 'test',
): Promise<{ url: string; schema: string; cleanup: () => Promise<void> }> {
  const schema = `agentpool_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`the tests need PostgreSQL at ${TEST_DATABASE_URL}: ${String(err)}`, { cause: err });
  }
  await admin.end();
  return {
    url: TEST_DATABASE_URL,
    schema,
    cleanup: async () => {
      const dropper = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await dropper.connect();
      try {
        await dropper.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await dropper.end();
      }
    },
  };
}
