/**
 * Prometheus series of tools, on the pool's registry: per tool and source (`builtin`, `custom`,
 * `module`, `mcp:<server>`) its calls, errors, timeouts and latency, read from the catalog's
 * figures when scraped (the run loop only adds to plain numbers); the module loader's loads,
 * reloads, cache hits and refused reloads; and hook failures by hook point. The tool label set is
 * bounded by the figures' `maxSeries` (later tools share `tool="(other)"`); there is no project
 * label (the stats API has the per-project breakdown).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { type CollectedHistogram, histogramSamples, type HistogramSample } from './labelled-histogram.ts';
import type { HookName } from './tools/hooks.ts';
import type { ToolCatalog } from './tools/catalog.ts';
import type { ToolSeries } from './tools/tool-figures.ts';

/** What the pool calls when a hook fails. */
export interface HookFailureCounter {
  hookFailed(hook: HookName): void;
}

/** Registers the tool series on `registry`; returns the hook failure counter. */
export function registerToolMetrics(registry: Registry, tools: ToolCatalog): HookFailureCounter {
  const registers = [registry];
  const perTool = (name: string, help: string, read: (s: ToolSeries) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['tool', 'source'],
      registers,
      collect() {
        this.reset();
        for (const s of tools.figures.series()) this.inc({ tool: s.tool, source: s.source }, read(s));
      },
    });
  perTool('agentpool_tool_calls_total', 'Tool calls the run loop made, by tool and source.', (s) => s.calls);
  perTool(
    'agentpool_tool_errors_total',
    'Tool calls that ended in an error (timeouts included), by tool and source.',
    (s) => s.errors,
  );
  perTool(
    'agentpool_tool_timeouts_total',
    'Tool calls that timed out, by tool and source.',
    (s) => s.timeouts,
  );
  registry.registerMetric(toolLatency(tools) as never);
  const modules = (
    name: string,
    help: string,
    read: (s: ReturnType<ToolCatalog['modules']['stats']>) => number,
  ) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(tools.modules.stats()));
      },
    });
  modules(
    'agentpool_tool_module_loads_total',
    'Tool and hook modules loaded into the cache.',
    (s) => s.loads,
  );
  modules(
    'agentpool_tool_module_reloads_total',
    'Cached tool and hook modules replaced by a changed file.',
    (s) => s.reloads,
  );
  modules(
    'agentpool_tool_module_cache_hits_total',
    'Module loads served by the cached version (file unchanged).',
    (s) => s.cacheHits,
  );
  modules(
    'agentpool_tool_module_reloads_refused_total',
    'Changed module files not imported because tools.maxModuleVersions or tools.maxReloads was reached.',
    (s) => s.reloadsRefused,
  );
  new Gauge({
    name: 'agentpool_tool_module_versions',
    help: 'Distinct module versions imported into the process (Node keeps each until it exits).',
    registers,
    collect() {
      this.set(tools.modules.stats().versions);
    },
  });
  const hookErrors = new Counter({
    name: 'agentpool_hook_errors_total',
    help: 'Hooks that threw or rejected, by hook point (the run went on).',
    labelNames: ['hook'],
    registers,
  });
  return { hookFailed: (hook) => hookErrors.inc({ hook }) };
}

function toolLatency(tools: ToolCatalog): CollectedHistogram {
  const name = 'agentpool_tool_call_duration_seconds';
  const help = 'One tool call, by tool and source.';
  const type = 'histogram';
  const aggregator = 'sum';
  return {
    name,
    help,
    type,
    aggregator,
    get: () => {
      const values: HistogramSample[] = [];
      for (const s of tools.figures.series()) {
        values.push(
          ...histogramSamples(name, s.latency.snapshot(), { tool: s.tool, source: s.source }, 1000),
        );
      }
      return { name, help, type, aggregator, values };
    },
  };
}
