import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OTHER_TOOL, ToolFigures } from '../../src/tools/tool-figures.ts';

describe('tool figures', () => {
  it('count calls, errors (timeouts included) and time per tool and source, and per project', () => {
    const figures = new ToolFigures();
    const add = figures.seriesFor('add', 'custom');
    const search = figures.seriesFor('search', 'mcp:docs');
    figures.record('alpha', add, 'ok', 2);
    figures.record('alpha', add, 'error', 3);
    figures.record('beta', add, 'timeout', 30_000);
    figures.record('beta', search, 'ok', 7);
    assert.equal(figures.seriesFor('add', 'custom'), add, 'bound once, found again');
    const whole = figures.stats();
    assert.deepEqual(
      whole.tools.map((t) => [
        t.tool,
        t.source,
        t.calls,
        t.errors,
        t.timeouts,
        t.durationMs,
        t.latencyMs.p50,
      ]),
      [
        ['add', 'custom', 3, 2, 1, 30_005, 5],
        ['search', 'mcp:docs', 1, 0, 0, 7, 10],
      ],
    );
    assert.deepEqual(
      whole.sources.map((s) => [s.source, s.calls]),
      [
        ['custom', 3],
        ['mcp:docs', 1],
      ],
    );
    assert.deepEqual(figures.projectStats('alpha').tools, [
      { tool: 'add', source: 'custom', calls: 2, errors: 1, timeouts: 0, durationMs: 5 },
    ]);
    assert.deepEqual(figures.projectCounts('beta', 'search', 'mcp:docs'), {
      calls: 1,
      errors: 0,
      timeouts: 0,
      durationMs: 7,
    });
    figures.forgetProject('beta');
    assert.deepEqual(figures.projectStats('beta'), { tools: [], sources: [] });
    assert.equal(figures.stats().tools[0]?.calls, 3, 'the series keep what a forgotten project called');
  });

  it('bound the series: tools past maxSeries share their source’s "(other)" series', () => {
    const figures = new ToolFigures({ maxSeries: 2 });
    const a = figures.seriesFor('a', 'module');
    const b = figures.seriesFor('b', 'module');
    const c = figures.seriesFor('c', 'module');
    const d = figures.seriesFor('d', 'module');
    assert.deepEqual([a.tool, b.tool, c.tool], ['a', 'b', OTHER_TOOL]);
    assert.equal(c, d);
    const custom = figures.seriesFor('x', 'custom');
    assert.equal(custom.tool, OTHER_TOOL);
    assert.equal(figures.series().length, 4, 'two named series, one "(other)" per source');
  });

  it('bound the sources too: a source first seen past maxSeries shares one "(other)" source', () => {
    const figures = new ToolFigures({ maxSeries: 2 });
    figures.seriesFor('a', 'module');
    figures.seriesFor('b', 'module');
    const late = [1, 2, 3, 4, 5].map((i) => figures.seriesFor('t', `mcp:server-${i}`));
    assert.ok(late.every((s) => s === late[0]));
    assert.deepEqual([late[0]!.tool, late[0]!.source], [OTHER_TOOL, OTHER_TOOL]);
    assert.equal(figures.series().length, 3, 'however many MCP servers are declared');
  });

  it('bound the projects with a breakdown, dropping the least recently added', () => {
    const figures = new ToolFigures({ maxProjects: 2 });
    const add = figures.seriesFor('add', 'custom');
    for (const project of ['p1', 'p2', 'p3']) figures.record(project, add, 'ok', 1);
    assert.deepEqual(figures.projectStats('p1').tools, []);
    assert.equal(figures.projectStats('p3').tools[0]?.calls, 1);
  });
});
