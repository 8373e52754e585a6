import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ManualClock, systemClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  type BuiltinToolOptions,
  createBuiltinTools,
  evaluateArithmetic,
  isHostAllowed,
  resolveBuiltinToolOptions,
} from '../../src/tools/builtins.ts';
import { runTool, type ToolContext, type ToolResult } from '../../src/tools/tool.ts';

const ctx: ToolContext = {
  signal: new AbortController().signal,
  project: 'acme',
  agent: 'support',
  runId: 'run_1',
  threadId: null,
  idempotencyKey: 'run_test:1:0',
};

function output(result: ToolResult): unknown {
  assert.ok(result.ok, `expected success, got ${JSON.stringify(result)}`);
  return result.output;
}

function failure(result: ToolResult): { code: string; message: string } {
  assert.ok(!result.ok, `expected failure, got ${JSON.stringify(result)}`);
  return result.error;
}

describe('builtin tool options', () => {
  it('default to an empty allowlist, 10 s, 100 KB and 5 redirects', () => {
    const o = resolveBuiltinToolOptions();
    assert.deepEqual(
      [o.fetchAllowlist, o.fetchTimeoutMs, o.fetchMaxBytes, o.fetchMaxRedirects, o.clock, o.fetch],
      [[], 10_000, 102_400, 5, systemClock, globalThis.fetch],
    );
  });

  it('normalise hosts and reject entries that are not hosts, naming the field', () => {
    assert.deepEqual(
      resolveBuiltinToolOptions({ fetchAllowlist: ['API.Example.com.', '*.x.org'] }).fetchAllowlist,
      ['api.example.com', '*.x.org'],
    );
    for (const bad of ['https://x.org', 'x.org:8080', 'x.org/path', 'a.*.org', '']) {
      assert.throws(
        () => resolveBuiltinToolOptions({ fetchAllowlist: ['ok.org', bad] }),
        (err) =>
          isAgentPoolError(err, 'VALIDATION_FAILED') &&
          err.message.startsWith('tools.builtins.fetchAllowlist[1]'),
      );
    }
    assert.throws(
      () => resolveBuiltinToolOptions({ fetchMaxBytes: 0 }),
      /tools\.builtins\.fetchMaxBytes must be a positive integer/,
    );
  });

  it('match exact hosts, and subdomains for a wildcard but not the bare domain', () => {
    const allow = ['api.example.com', '*.example.org', '127.0.0.1'];
    assert.ok(isHostAllowed('api.example.com', allow));
    assert.ok(isHostAllowed('a.example.org', allow));
    assert.ok(isHostAllowed('a.b.example.org', allow));
    assert.ok(isHostAllowed('127.0.0.1', allow));
    assert.ok(!isHostAllowed('example.org', allow));
    assert.ok(!isHostAllowed('badexample.org', allow));
    assert.ok(!isHostAllowed('www.example.com', allow));
    assert.ok(!isHostAllowed('api.example.com.evil.net', allow));
  });
});

describe('calculator', () => {
  const { calculator } = createBuiltinTools();

  it('applies precedence, parentheses, unary minus, powers and decimals', () => {
    const cases: [string, number][] = [
      ['1 + 2 * 3', 7],
      ['(1 + 2) * 3', 9],
      ['10 - 4 - 3', 3],
      ['2 * (3 + (4 - 1)) / 4', 3],
      ['7 % 4 + 1', 4],
      ['-3 + 5', 2],
      ['-(2 + 3)', -5],
      ['--3', 3],
      ['2 * -3', -6],
      ['2 ^ 10', 1024],
      ['2 ** 3', 8],
      ['2 ^ 3 ^ 2', 512],
      ['-2 ^ 2', -4],
      ['(-2) ^ 2', 4],
      ['2 ^ -1', 0.5],
      ['1.5 * .5', 0.75],
      ['0.1 + 0.2', 0.3],
      ['1e3 / 8', 125],
    ];
    for (const [expression, expected] of cases)
      assert.equal(evaluateArithmetic(expression), expected, expression);
  });

  it('runs as a tool returning the expression and its result', async () => {
    assert.deepEqual(output(await runTool(calculator, { expression: '6 * 7' }, ctx, 1000)), {
      expression: '6 * 7',
      result: 42,
    });
  });

  it('explains division by zero and malformed input, with the position', async () => {
    const cases: [string, RegExp][] = [
      ['1 / 0', /^division by zero at character 3 of "1 \/ 0"$/],
      ['5 % (2 - 2)', /^division by zero at character 3/],
      ['2 +', /^expression ends too early/],
      ['(1 + 2', /^missing "\)" to close the "\(" at character 1/],
      ['1 + 2)', /^unexpected "\)" at character 6/],
      ['1 2', /^unexpected number at character 3/],
      ['2 * abs(3)', /^unexpected character "a" at character 5/],
      ['1.2.3', /^unexpected number at character 4/],
      ['* 3', /^expected a number or "\(" but found "\*" at character 1/],
      ['   ', /^expression is empty/],
      ['10 ^ 400', /^result is too large/],
      ['(-8) ^ 0.5', /^result is not a real number/],
      ['('.repeat(100) + '1' + ')'.repeat(100), /nests deeper than 64 levels/],
    ];
    for (const [expression, message] of cases) {
      const error = failure(await runTool(calculator, { expression }, ctx, 1000));
      assert.equal(error.code, 'TOOL_INPUT_INVALID', expression);
      assert.match(error.message, message, expression);
    }
  });

  it('never evaluates JavaScript', async () => {
    for (const expression of ['process.exit(1)', 'constructor', '[] + {}', '0x10', '1; 2']) {
      assert.equal(failure(await runTool(calculator, { expression }, ctx, 1000)).code, 'TOOL_INPUT_INVALID');
    }
  });
});

describe('current_time', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 15, 9, 30, 5, 42));
  const { current_time } = createBuiltinTools({ clock });

  it('answers UTC by default, from the injected clock', async () => {
    assert.deepEqual(output(await runTool(current_time, {}, ctx, 1000)), {
      iso: '2026-01-15T09:30:05.042+00:00',
      timezone: 'UTC',
      utcOffset: '+00:00',
      weekday: 'Thursday',
    });
  });

  it('answers local time with the offset of an IANA zone', async () => {
    assert.deepEqual(output(await runTool(current_time, { timezone: 'America/New_York' }, ctx, 1000)), {
      iso: '2026-01-15T04:30:05.042-05:00',
      timezone: 'America/New_York',
      utcOffset: '-05:00',
      weekday: 'Thursday',
    });
    const kolkata = output(await runTool(current_time, { timezone: 'Asia/Kolkata' }, ctx, 1000));
    assert.deepEqual(kolkata, {
      iso: '2026-01-15T15:00:05.042+05:30',
      timezone: 'Asia/Kolkata',
      utcOffset: '+05:30',
      weekday: 'Thursday',
    });
  });

  it('refuses an unknown zone with a clear error', async () => {
    const error = failure(await runTool(current_time, { timezone: 'Mars/Olympus_Mons' }, ctx, 1000));
    assert.equal(error.code, 'TOOL_INPUT_INVALID');
    assert.match(error.message, /unknown time zone "Mars\/Olympus_Mons": use an IANA name/);
  });
});

describe('fetch_url', () => {
  const requests: string[] = [];
  let slowRequest: () => void = () => {};
  let slowArrived = new Promise<void>((r) => (slowRequest = r));
  let endlessClosed: () => void = () => {};
  let base = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '');
    if (req.url === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('hello world');
    } else if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(300));
    } else if (req.url === '/accents') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('é'.repeat(10)); // 2 bytes each
    } else if (req.url === '/hop') {
      res.writeHead(302, { location: '/hello' }).end();
    } else if (req.url === '/escape') {
      res.writeHead(302, { location: base.replace('127.0.0.1', 'localhost') + '/hello' }).end();
    } else if (req.url === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = 'y'.repeat(1024);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.once('close', () => endlessClosed());
      pump();
    } else if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      slowRequest(); // and never end
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
    }
  });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const tools = (options: BuiltinToolOptions = {}) =>
    createBuiltinTools({ fetchAllowlist: ['127.0.0.1'], ...options }).fetch_url;

  it('fetches an allowlisted URL and returns status, content type and text', async () => {
    assert.deepEqual(output(await runTool(tools(), { url: `${base}/hello` }, ctx, 5000)), {
      url: `${base}/hello`,
      status: 200,
      contentType: 'text/plain; charset=utf-8',
      body: 'hello world',
      truncated: false,
    });
  });

  it('returns an HTTP error status as a result, not a tool error', async () => {
    const result = output(await runTool(tools(), { url: `${base}/missing` }, ctx, 5000)) as Record<
      string,
      unknown
    >;
    assert.equal(result.status, 404);
    assert.equal(result.body, 'not here');
  });

  it('refuses hosts outside the allowlist and non-http URLs without sending a request', async () => {
    const before = requests.length;
    const refused = failure(
      await runTool(tools(), { url: base.replace('127.0.0.1', 'localhost') }, ctx, 5000),
    );
    assert.equal(refused.code, 'TOOL_INPUT_INVALID');
    assert.match(
      refused.message,
      /^refused: host "localhost" is not in the fetch allowlist \(allowed: 127\.0\.0\.1\)$/,
    );
    assert.match(
      failure(await runTool(tools(), { url: 'file:///etc/passwd' }, ctx, 5000)).message,
      /only http and https URLs can be fetched, got file:/,
    );
    assert.match(
      failure(await runTool(tools(), { url: 'not a url' }, ctx, 5000)).message,
      /not a valid absolute URL/,
    );
    assert.match(
      failure(await runTool(createBuiltinTools().fetch_url, { url: `${base}/hello` }, ctx, 5000)).message,
      /no hosts are allowed/,
    );
    assert.equal(requests.length, before);
  });

  it('follows redirects within the allowlist and refuses one that leaves it', async () => {
    const hop = output(await runTool(tools(), { url: `${base}/hop` }, ctx, 5000)) as Record<string, unknown>;
    assert.deepEqual([hop.url, hop.body], [`${base}/hello`, 'hello world']);
    const escape = failure(await runTool(tools(), { url: `${base}/escape` }, ctx, 5000));
    assert.match(escape.message, /host "localhost" is not in the fetch allowlist/);
    const loop = failure(await runTool(tools({ fetchMaxRedirects: 2 }), { url: `${base}/loop` }, ctx, 5000));
    assert.equal(loop.code, 'TOOL_FAILED');
    assert.match(loop.message, /stopped after 2 redirects/);
  });

  it('cuts the body at the byte limit and says so, never splitting a character', async () => {
    const big = output(await runTool(tools({ fetchMaxBytes: 100 }), { url: `${base}/big` }, ctx, 5000));
    assert.deepEqual(
      [(big as { body: string }).body, (big as { truncated: boolean }).truncated],
      ['x'.repeat(100), true],
    );
    const accents = output(await runTool(tools({ fetchMaxBytes: 5 }), { url: `${base}/accents` }, ctx, 5000));
    assert.equal((accents as { body: string }).body, 'éé');
    const exact = output(await runTool(tools({ fetchMaxBytes: 300 }), { url: `${base}/big` }, ctx, 5000));
    assert.equal((exact as { truncated: boolean }).truncated, false);
  });

  it('stops downloading once the limit is reached', async () => {
    const closed = new Promise<void>((r) => (endlessClosed = r));
    const result = output(
      await runTool(tools({ fetchMaxBytes: 4096 }), { url: `${base}/endless` }, ctx, 5000),
    );
    assert.deepEqual(result, {
      url: `${base}/endless`,
      status: 200,
      contentType: 'text/plain',
      body: 'y'.repeat(4096),
      truncated: true,
    });
    // The server sees the connection go away; without that this would wait for ever (and fail).
    await closed;
  });

  it('gives up with TOOL_TIMEOUT when the server is too slow', async () => {
    const clock = new ManualClock();
    slowArrived = new Promise<void>((r) => (slowRequest = r));
    const pending = runTool(tools({ clock, fetchTimeoutMs: 2000 }), { url: `${base}/slow` }, ctx, 0);
    await slowArrived;
    clock.advance(2000);
    const error = failure(await pending);
    assert.deepEqual(error, { code: 'TOOL_TIMEOUT', message: 'fetch_url timed out after 2000 ms' });
  });

  it('reports a connection failure as TOOL_FAILED naming the URL', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
    await new Promise((r) => closed.close(r));
    const error = failure(await runTool(tools(), { url }, ctx, 5000));
    assert.equal(error.code, 'TOOL_FAILED');
    assert.match(
      error.message,
      new RegExp(`^fetch_url could not fetch ${url.replaceAll('.', '\\.')}: .*ECONNREFUSED`),
    );
  });
});
