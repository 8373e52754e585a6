/**
 * MCP tools in real runs: an agent referencing `mcp:<server>` is run through the fake
 * OpenAI-compatible server, which is offered the server's tools under their `<server>__<tool>`
 * names and calls one over Streamable HTTP; many runs share one session and one listing; a
 * cancelled run cancels its MCP request on the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MODEL, runFixture } from '../../support/run-fixture.ts';
import { startMcpServer, type TestMcpServer } from '../../support/mcp-server.ts';
import { until } from './rig.ts';

const P = 'acme';

describe('runs calling MCP tools', () => {
  let f: Awaited<ReturnType<typeof runFixture>>;
  let server: TestMcpServer;
  before(async () => {
    server = await startMcpServer();
    f = await runFixture({ tools: { tools: [] } });
    await f.pool.projects.create({ id: P });
    await f.pool.mcp.put(P, 'calc', { transport: 'http', url: server.url });
    await f.pool.agents.create(P, { name: 'mathy', model: MODEL, tools: ['mcp:calc', 'calculator'] });
  });
  after(async () => {
    await f.close();
    await server.close();
  });

  it('offers the server tools to the model, calls one, and feeds its result back', async () => {
    f.fake.script({ toolCalls: [{ name: 'calc__add', arguments: { a: 17, b: 25 } }] }, { text: 'It is 42.' });
    const thread = await f.pool.threads.create(P);
    const run = await (
      await f.pool.runs.start(P, 'mathy', { input: 'add 17 and 25', threadId: thread.id })
    ).result;
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.output, 'It is 42.');
    const first = f.fake.requests.at(-2);
    assert.deepEqual(
      (first?.tools ?? []).map((t) => t.function.name),
      ['calc__echo', 'calc__add', 'calc__slow', 'calculator'],
    );
    const add = first?.tools?.find((t) => t.function.name === 'calc__add');
    assert.equal(add?.function.description, 'Adds two numbers.');
    assert.deepEqual((add?.function.parameters as { required?: string[] }).required, ['a', 'b']);
    const toolMessage = f.fake.requests.at(-1)?.messages.find((m) => m.role === 'tool');
    assert.match(String(toolMessage?.content), /42/);
  });

  it('lists the server tools in GET /v1/tools (pool.listTools) with their per-tool figures', async () => {
    const listing = await f.pool.listTools(P);
    const add = listing.data.find((t) => t.name === 'calc__add');
    assert.equal(add?.source, 'mcp:calc');
    assert.equal(add?.ref, 'mcp:calc/add');
    assert.equal(add?.loaded, true);
    assert.ok((add?.figures.calls ?? 0) >= 1, JSON.stringify(add?.figures));
    assert.ok(listing.data.some((t) => t.name === 'calc__slow' && t.figures.calls === 0));
    const { sources } = f.pool.tools.figures.projectStats(P);
    const calc = sources.find((s) => s.source === 'mcp:calc');
    assert.ok((calc?.calls ?? 0) >= 1, JSON.stringify(sources));
  });

  it('shares one session and one listing across runs', async () => {
    const opensBefore = server.counts.initialize;
    for (let i = 0; i < 5; i++) {
      f.fake.script({ toolCalls: [{ name: 'calc__echo', arguments: { text: `r${i}` } }] }, { text: 'done' });
      const run = await (await f.pool.runs.start(P, 'mathy', { input: 'echo' })).result;
      assert.equal(run.status, 'succeeded');
    }
    assert.equal(server.counts.initialize, opensBefore, 'no new session');
    assert.equal(server.counts.list, 1, 'listed once, at the first activation');
  });

  it('cancels the in-flight MCP request when the run is cancelled', async () => {
    f.fake.script({ toolCalls: [{ name: 'calc__slow', arguments: {} }] });
    const before = server.counts.cancelled;
    const handle = await f.pool.runs.start(P, 'mathy', { input: 'be slow' });
    const calls = server.counts.call;
    for await (const e of handle.stream.events()) if (e.type === 'tool.call') break;
    await until(() => server.counts.call > calls, 'the call to reach the MCP server');
    const run = await f.pool.runs.cancel(P, handle.id);
    assert.equal(run.status, 'cancelled');
    await until(() => server.counts.cancelled === before + 1, 'notifications/cancelled on the server');
  });
});
