/**
 * `/v1/flags` over HTTP: the admin key lists, reads, creates or replaces, deletes flags and reads
 * their history; a project key is refused with 403 FORBIDDEN; bad input answers VALIDATION_FAILED
 * naming the field with the flag validation's message; `If-Match` makes a write conditional.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };
type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

describe('feature flags over HTTP', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture({ adminKey: ADMIN });
  });
  afterEach(async () => f.close());

  const call = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: object, headers = {}) =>
    f.app.inject({
      method,
      url,
      headers: { ...admin, ...headers },
      ...(payload !== undefined && { payload }),
    });

  it('creates (201), replaces (200), reads, lists, deletes, and tells the history newest first', async () => {
    const created = await call('PUT', '/v1/flags/new-ui', { strategy: 'percentage', percent: 20 });
    assert.equal(created.statusCode, 201);
    const body = json<{ name: string; flag: unknown; percent: number; startedAt: number; updatedBy: string }>(
      created,
    );
    assert.deepEqual(
      [body.name, body.flag, body.percent, body.updatedBy],
      ['new-ui', { strategy: 'percentage', percent: 20 }, 20, 'admin'],
    );
    assert.equal(f.pool.flags.get('new-ui')?.percent, 20, 'in effect at once');
    const replaced = await call('PUT', '/v1/flags/new-ui', { strategy: 'allowlist', projects: ['acme'] });
    assert.equal(replaced.statusCode, 200);
    assert.equal(f.pool.flags.isEnabled('new-ui', { project: 'acme', key: 'k' }), true, 'in effect at once');
    assert.deepEqual(json(await call('GET', '/v1/flags/new-ui')).flag, {
      strategy: 'allowlist',
      projects: ['acme'],
    });
    await call('PUT', '/v1/flags/another', { strategy: 'all' });
    assert.deepEqual(
      json<{ data: { name: string }[] }>(await call('GET', '/v1/flags')).data.map((x) => x.name),
      ['another', 'new-ui'],
    );
    const deleted = await call('DELETE', '/v1/flags/new-ui');
    assert.equal(deleted.statusCode, 200);
    assert.equal(json(deleted).action, 'delete');
    assert.equal(json<ErrorBody>(await call('GET', '/v1/flags/new-ui')).error.code, 'NOT_FOUND');
    assert.equal((await call('DELETE', '/v1/flags/new-ui')).statusCode, 404);

    const page1 = json<{
      data: { action: string; actor: string; before: unknown; after: unknown }[];
      nextCursor: string;
    }>(await call('GET', '/v1/flags/new-ui/history?limit=2'));
    assert.deepEqual(
      page1.data.map((c) => [c.action, c.actor]),
      [
        ['delete', 'admin'],
        ['put', 'admin'],
      ],
    );
    assert.deepEqual(page1.data[1]!.before, {
      flag: { strategy: 'percentage', percent: 20 },
      startedAt: body.startedAt,
    });
    const page2 = json<{ data: { before: unknown }[]; nextCursor: null }>(
      await call('GET', `/v1/flags/new-ui/history?limit=2&cursor=${page1.nextCursor}`),
    );
    assert.equal(page2.data.length, 1);
    assert.equal(page2.data[0]!.before, null);
    assert.equal(page2.nextCursor, null);
  });

  it('answers 403 FORBIDDEN to a project key on every flag route', async () => {
    await f.pool.projects.create({ id: 'acme' });
    const { key } = await f.pool.projects.createKey('acme');
    const auth = { authorization: `Bearer ${key}` };
    for (const [method, url] of [
      ['GET', '/v1/flags'],
      ['GET', '/v1/flags/beta'],
      ['PUT', '/v1/flags/beta'],
      ['DELETE', '/v1/flags/beta'],
      ['GET', '/v1/flags/beta/history'],
    ] as const) {
      const res = await f.app.inject({
        method,
        url,
        headers: auth,
        ...(method === 'PUT' && { payload: { strategy: 'all' } }),
      });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(json<ErrorBody>(res).error.code, 'FORBIDDEN');
    }
    assert.equal(f.pool.flags.has('beta'), false);
  });

  it('refuses bad input with VALIDATION_FAILED naming the field', async () => {
    const cases: [string, object, string, RegExp][] = [
      ['beta', { strategy: 'percentage', percent: 120 }, 'flag.percent', /must be a number from 0 to 100/],
      ['beta', { strategy: 'percentage' }, 'flag.percent', /is required/],
      ['beta', { strategy: 'allowlist', projects: ['a', 'a'] }, 'flag.projects[1]', /repeats/],
      [
        'beta',
        { strategy: 'gradual', startPercent: 50, endPercent: 10, durationMs: 1000 },
        'flag.endPercent',
        /only rises/,
      ],
      ['beta', { strategy: 'all', percent: 3 }, 'flag.percent', /./],
      ['Bad_Name', { strategy: 'all' }, 'name', /name must be/],
    ];
    for (const [name, payload, field, message] of cases) {
      const res = await call('PUT', `/v1/flags/${name}`, payload);
      const error = json<ErrorBody>(res).error;
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.details.field, field, error.message);
      assert.match(error.message, message);
    }
    const unknown = await call('PUT', '/v1/flags/beta', { strategy: 'sometimes' });
    assert.equal(json<ErrorBody>(unknown).error.code, 'VALIDATION_FAILED');
    assert.equal(f.pool.flags.list().length, 0);
  });

  it('writes only over the revision of If-Match (0: only create), else 409 VERSION_CONFLICT', async () => {
    const first = json<{ revision: number }>(
      await call('PUT', '/v1/flags/beta', { strategy: 'all' }, { 'if-match': '0' }),
    );
    const again = await call('PUT', '/v1/flags/beta', { strategy: 'none' }, { 'if-match': '0' });
    assert.equal(again.statusCode, 409);
    assert.equal(json<ErrorBody>(again).error.code, 'VERSION_CONFLICT');
    const ok = await call(
      'PUT',
      '/v1/flags/beta',
      { strategy: 'none' },
      { 'if-match': `"${first.revision}"` },
    );
    assert.equal(ok.statusCode, 200);
    const stale = await call('DELETE', '/v1/flags/beta', undefined, { 'if-match': String(first.revision) });
    assert.equal(stale.statusCode, 409);
    const bad = await call('DELETE', '/v1/flags/beta', undefined, { 'if-match': 'yes' });
    assert.equal(json<ErrorBody>(bad).error.details.field, 'If-Match');
    assert.equal(f.pool.flags.get('beta')?.flag.strategy, 'none');
  });
});
