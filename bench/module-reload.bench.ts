/**
 * What checking tool modules for changes costs an activation: an agent with one module tool
 * activated again and again (deactivated between), with `tools.reload` on (a synchronous `stat`
 * of the file per activation) and off, against the same pool's agent without tools as the
 * baseline, in one process, alternating rounds so machine load hits all three alike.
 *
 *   node --expose-gc bench/module-reload.bench.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAgentPool } from '../src/index.ts';
import { tempDir } from '../test/support/temp-dir.ts';

const ROUNDS = 20;
const PER_ROUND = 500;
const TOOL_TS = join(import.meta.dirname, '../src/tools/tool.ts');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const { dir, cleanup } = tempDir('agentpool-bench-');
try {
  writeFileSync(
    join(dir, 'tool.ts'),
    `import { defineTool } from ${JSON.stringify(TOOL_TS)};\n` +
      `export const greet = defineTool({ name: 'greet', description: 'Greets.', ` +
      `inputSchema: { type: 'object', properties: {} }, execute: () => 'hi' });\n`,
  );
  const pools = {
    on: await createAgentPool({ store: 'memory', tools: { baseDir: dir, reload: true } }),
    off: await createAgentPool({ store: 'memory', tools: { baseDir: dir, reload: false } }),
  };
  for (const pool of Object.values(pools)) {
    await pool.agents.create('b', { name: 'module', tools: ['module:./tool.ts'] });
    await pool.agents.create('b', { name: 'plain' });
  }
  const cases = [
    ['no tools (baseline)', pools.on, 'plain'],
    ['module tool, reload on', pools.on, 'module'],
    ['module tool, reload off', pools.off, 'module'],
  ] as const;
  const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, pool, agent] of cases) {
      const out = samples.get(name)!;
      for (let i = 0; i < PER_ROUND; i++) {
        pool.instances.deactivate('b', agent);
        const t0 = performance.now();
        const lease = await pool.instances.acquire('b', agent);
        const elapsed = performance.now() - t0;
        lease.release();
        if (round > 0) out.push(elapsed * 1000);
      }
    }
  }
  const base = median(samples.get(cases[0][0])!);
  console.log(`activation from the memory store, median µs, ${(ROUNDS - 1) * PER_ROUND} per case`);
  console.log('| case | µs | / baseline |\n| --- | --- | --- |');
  for (const [name] of cases) {
    const m = median(samples.get(name)!);
    console.log(`| ${name} | ${m.toFixed(1)} | ${(m / base).toFixed(2)} |`);
  }
  for (const pool of Object.values(pools)) await pool.close();
} finally {
  cleanup();
}
