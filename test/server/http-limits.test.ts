/**
 * The server's limits against slow, numerous and malformed clients, tested over raw TCP sockets
 * against a listening server (inject() has no sockets to time out or count). The timeouts are
 * made small so the tests run fast; the per-test `timeout` only turns a hang into a failure.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { ServerOptions } from '../../src/server/app.ts';
import { jsonNestingExceeds, resolveHttpLimitsOptions } from '../../src/server/http-limits.ts';
import { parseSse, serverFixture } from './support.ts';

const ADMIN = 'admin-key-0123456789';
const GUARD = { timeout: 20_000 };

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/** A raw client socket: everything it received, and whether the server closed it. */
interface RawClient {
  socket: Socket;
  received(): string;
  /** Resolves with everything received once the connection is closed. */
  closed: Promise<string>;
  /** Resolves once `text` has been received. */
  until(text: string): Promise<string>;
}

/** Every client socket a test opened, destroyed after it, so a failing test cannot keep the server open. */
const opened: Socket[] = [];

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    opened.push(socket);
    let data = '';
    const waiters: { text: string; resolve: (data: string) => void }[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      for (const w of waiters.splice(0)) {
        if (data.includes(w.text)) w.resolve(data);
        else waiters.push(w);
      }
    });
    socket.on('error', () => undefined); // a refused or reset connection shows as `closed`
    const closed = new Promise<string>((done) => socket.once('close', () => done(data)));
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closed,
        until: (text) =>
          data.includes(text)
            ? Promise.resolve(data)
            : new Promise((done) => waiters.push({ text, resolve: done })),
      }),
    );
    socket.once('error', reject);
  });
}

/** A connection the server may refuse: resolves with what was received before the close, or `open`. */
async function tryConnect(port: number): Promise<'open' | string> {
  const client = await rawClient(port).catch(() => undefined);
  if (client === undefined) return '';
  const outcome = await Promise.race([client.closed, sleep(300).then(() => 'open' as const)]);
  client.socket.destroy();
  return outcome;
}

/** The JSON body of a raw HTTP answer. */
function bodyOf(answer: string): { error: { code: string; message: string } } {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
    error: { code: string; message: string };
  };
}

const headers = (answer: string) => answer.slice(0, answer.indexOf('\r\n\r\n')).toLowerCase();

describe('HTTP limits', () => {
  let f: Fixture | undefined;
  let port = 0;
  afterEach(async () => {
    for (const socket of opened.splice(0)) socket.destroy();
    await f?.close();
    f = undefined;
  });

  async function listen(options: ServerOptions = {}): Promise<Fixture> {
    f = await serverFixture(options);
    await f.app.listen({ port: 0, host: '127.0.0.1' });
    port = (f.app.server.address() as { port: number }).port;
    return f;
  }

  it('pins the defaults and rejects bad values naming the field', () => {
    assert.deepEqual(resolveHttpLimitsOptions(), {
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 72_000,
      maxConnections: 10_000,
      maxConnectionsPerIp: 1024,
      maxJsonDepth: 64,
    });
    const rejects = (options: unknown, field: string) =>
      assert.throws(
        () => resolveHttpLimitsOptions(options as never),
        (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === field,
      );
    rejects({ requestTimeoutMs: 0 }, 'server.http.requestTimeoutMs');
    rejects({ maxConnectionsPerIp: -1 }, 'server.http.maxConnectionsPerIp');
    rejects({ maxJsonDepth: 1.5 }, 'server.http.maxJsonDepth');
    rejects({ requestTimeoutMs: 1000, headersTimeoutMs: 2000 }, 'server.http.headersTimeoutMs');
    rejects({ idleTimeout: 5 }, 'server.http.idleTimeout');
    assert.equal(resolveHttpLimitsOptions({ requestTimeoutMs: 4000 }).headersTimeoutMs, 4000);
  });

  it(
    'cuts a request whose body never finishes with 408 REQUEST_TIMEOUT and closes the socket',
    GUARD,
    async () => {
      await listen({ http: { requestTimeoutMs: 300, headersTimeoutMs: 300 } });
      const client = await rawClient(port);
      client.socket.write(
        'POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"metadata":',
      );
      const answer = await client.closed;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(headers(answer), /connection: close/);
      assert.equal(bodyOf(answer).error.code, 'REQUEST_TIMEOUT');
    },
  );

  it(
    'closes a connection whose headers never finish, or that sends nothing, after the headers timeout',
    GUARD,
    async () => {
      await listen({ http: { requestTimeoutMs: 60_000, headersTimeoutMs: 200 } });
      const slow = await rawClient(port);
      slow.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      const silent = await rawClient(port);
      for (const answer of await Promise.all([slow.closed, silent.closed])) {
        assert.match(answer, /^HTTP\/1\.1 408 /);
        assert.equal(bodyOf(answer).error.code, 'REQUEST_TIMEOUT');
      }
    },
  );

  it(
    'answers an unauthenticated slow body with 401 and closes the socket at once, without waiting for the body',
    GUARD,
    async () => {
      await listen({ adminKey: ADMIN, http: { requestTimeoutMs: 60_000 } });
      const client = await rawClient(port);
      client.socket.write(
        'POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"name":',
      );
      const answer = await client.closed; // long before the 60 s request timeout
      assert.match(answer, /^HTTP\/1\.1 401 /);
      assert.match(headers(answer), /connection: close/);
      assert.equal(bodyOf(answer).error.code, 'UNAUTHENTICATED');
    },
  );

  it('closes the connection after a 413 sent before reading an oversized body', GUARD, async () => {
    await listen({ bodyLimit: 1024, http: { requestTimeoutMs: 60_000 } });
    const client = await rawClient(port);
    client.socket.write(
      'POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{',
    );
    const answer = await client.closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.equal(bodyOf(answer).error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('keeps a normal keep-alive connection open across requests', GUARD, async () => {
    await listen({ adminKey: ADMIN, http: { requestTimeoutMs: 300, headersTimeoutMs: 300 } });
    const client = await rawClient(port);
    const get = `GET /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`;
    client.socket.write(get);
    const first = await client.until('"nextCursor"');
    assert.match(first, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(headers(first), /connection: close/);
    await sleep(500); // longer than the request timeout: idle between requests is not a slow request
    client.socket.write(
      `POST /v1/threads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    );
    const both = await client.until('"thr_');
    assert.match(both.slice(first.length), /^HTTP\/1\.1 201 /);
    assert.equal(client.socket.destroyed, false);
    client.socket.destroy();
  });

  it(
    'never cuts an answer that takes longer than the request timeout: a wait-mode run and an SSE stream',
    GUARD,
    async () => {
      const fx = await listen({ http: { requestTimeoutMs: 200, headersTimeoutMs: 200 } });
      await fx.pool.agents.create('default', { name: 'slow', model: 'slow/model' });
      const base = `http://127.0.0.1:${port}`;
      const post = (body: object) =>
        fetch(`${base}/v1/agents/slow/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const waiting = post({ input: 'hello' });
      const streaming = post({ input: 'hello', stream: true });
      await fx.slow.started;
      await sleep(800); // four request timeouts pass while the model thinks
      fx.slow.release();
      const waited = await waiting;
      assert.equal(waited.status, 200);
      assert.equal(((await waited.json()) as { status: string }).status, 'succeeded');
      const events = parseSse(await (await streaming).text());
      assert.equal(events.at(-1)?.event, 'run.finished');
    },
  );

  it(
    'refuses connections beyond maxConnectionsPerIp, serves the ones open, and accepts again once one closes',
    GUARD,
    async () => {
      const fx = await listen({
        http: { maxConnectionsPerIp: 2, requestTimeoutMs: 60_000, headersTimeoutMs: 60_000 },
      });
      const a = await rawClient(port);
      const b = await rawClient(port);
      assert.equal(await tryConnect(port), '', 'the third connection from this address is closed at once');
      b.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(await b.until('\r\n\r\n'), /^HTTP\/1\.1 200 /);
      a.socket.destroy();
      await a.closed;
      while ((await new Promise<number>((r) => fx.app.server.getConnections((_e, n) => r(n)))) > 1)
        await sleep(10);
      assert.equal(await tryConnect(port), 'open');
      b.socket.destroy();
    },
  );

  it('refuses connections beyond maxConnections', GUARD, async () => {
    await listen({
      http: { maxConnections: 2, maxConnectionsPerIp: 0, requestTimeoutMs: 60_000, headersTimeoutMs: 60_000 },
    });
    const a = await rawClient(port);
    const b = await rawClient(port);
    assert.equal(await tryConnect(port), '');
    a.socket.destroy();
    b.socket.destroy();
  });

  it('answers bytes that are not HTTP with 400 in the error shape and closes', GUARD, async () => {
    await listen();
    const client = await rawClient(port);
    client.socket.write('HELLO THERE\r\n\r\n');
    const answer = await client.closed;
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(bodyOf(answer).error.code, 'VALIDATION_FAILED');
  });
});

describe('JSON nesting scan', () => {
  it('counts objects and arrays outside strings, with escaped quotes inside them', () => {
    assert.equal(jsonNestingExceeds('{"a":[1,{"b":2}]}', 3), false);
    assert.equal(jsonNestingExceeds('{"a":[1,{"b":2}]}', 2), true);
    assert.equal(jsonNestingExceeds('{"a":"[[[[{{{{"}', 1), false);
    assert.equal(jsonNestingExceeds('{"a":"say \\"[[[\\" \\\\","b":[[1]]}', 2), true);
    assert.equal(jsonNestingExceeds('{"a":"\\\\"}', 1), false);
    assert.equal(jsonNestingExceeds('[[[[', 3), true);
    assert.equal(jsonNestingExceeds('"never closed [[[[', 1), false);
    assert.equal(jsonNestingExceeds('[]'.repeat(10_000), 1), false);
  });
});
