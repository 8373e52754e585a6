/**
 * A first look at agentpool as a library: define agents in the embedded SQLite store, run one on
 * a thread with the built-in demo model (no key, no network) and a tool, then watch the pool
 * activate, reuse, evict and retire instances. Every line it prints is read from the pool.
 *
 *   node examples/quickstart.ts             (or: npm run example) a fresh temporary data directory, removed at the end
 *   node examples/quickstart.ts ./qs-data   that directory, kept (run it twice: the agents come back unchanged)
 *
 * It never touches ./data, where `agentpool serve` keeps its agents.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createAgentPool, DEFAULT_PROJECT } from '../src/index.ts';

const given = process.argv[2];
const dataDir = given !== undefined ? resolve(given) : mkdtempSync(join(tmpdir(), 'agentpool-quickstart-'));
console.log(`data directory: ${dataDir}${given === undefined ? ' (temporary)' : ''}`);

const pool = await createAgentPool({ dataDir, pool: { maxActive: 2 } });
const project = DEFAULT_PROJECT;
// What the pool does to instances, as it happens: activations, evictions, retirements.
const unsubscribe = pool.events.on('instance.state_changed', (e) => {
  if (e.from === 'initializing' && e.to === 'ready')
    console.log(`  [pool] activated ${e.name} v${e.version}`);
  if (e.to === 'terminated') console.log(`  [pool] ${e.name} v${e.version} left the pool (${e.reason})`);
});

try {
  console.log('\napply three agents:');
  for (const name of ['support', 'billing', 'research']) {
    const { agent, result } = await pool.agents.apply(project, {
      name,
      instructions: `You are the ${name} agent.`,
      model: 'demo/assistant',
      tools: ['builtin:calculator', 'builtin:current_time'],
      labels: { example: 'quickstart' },
    });
    console.log(`  ${name}: ${result}, active version ${agent.activeVersion}`);
  }

  console.log('\na run on a thread, streamed:');
  const thread = await pool.threads.create(project);
  const handle = await pool.runs.start(project, 'support', { input: 'what is 17*23', threadId: thread.id });
  let open = false; // a line of streamed text is open
  for await (const e of handle.stream.events()) {
    if (e.type === 'text.delta') {
      if (!open) process.stdout.write(`  #${e.seq} text        `);
      process.stdout.write(e.delta);
      open = true;
      continue;
    }
    if (open) process.stdout.write('\n');
    open = false;
    if (e.type === 'tool.call')
      console.log(`  #${e.seq} tool.call   ${e.toolName}(${JSON.stringify(e.input)})`);
    else if (e.type === 'tool.result')
      console.log(`  #${e.seq} tool.result ${JSON.stringify(e.output ?? e.error)}`);
    else if (e.type === 'run.finished')
      console.log(`  #${e.seq} run.finished: ${e.run.status} in ${e.run.steps} steps`);
    else if (e.type === 'run.failed')
      console.log(`  #${e.seq} run.failed ${e.error.code}: ${e.error.message}`);
  }
  const run = await handle.result;
  console.log(
    `  output: ${JSON.stringify(run.output)} (${run.inputTokens} in / ${run.outputTokens} out tokens)`,
  );
  const messages = await pool.threads.messages(project, thread.id);
  console.log(
    `  the thread holds ${messages.data.length} messages: ${messages.data.map((m) => m.role).join(', ')}`,
  );

  console.log('\nmaxActive is 2, so running billing and research makes room by evicting an idle instance:');
  for (const name of ['billing', 'research']) {
    const done = await (await pool.runs.start(project, name, { input: 'hello' })).result;
    console.log(`  ${name}: ${done.status}, ${JSON.stringify(done.output)}`);
  }
  const live = pool.instances.instances(project).map((i) => `${i.name} v${i.version} (${i.state})`);
  console.log(`  live instances now: ${live.join(', ')}`);

  console.log('\nupdate support: the change makes a new version, and its next run activates it:');
  const { agent: updated, changed } = await pool.agents.update(project, 'support', {
    instructions: 'You are the support agent. Answer in one line.',
  });
  console.log(`  changed: ${changed}, support is now at version ${updated.activeVersion}`);
  const next = await (
    await pool.runs.start(project, 'support', { input: 'what is 2+2', threadId: thread.id })
  ).result;
  console.log(`  the run used version ${next.agentVersion}: ${JSON.stringify(next.output)}`);

  const s = pool.instances.stats();
  console.log(
    `\npool: active ${s.active}/${s.maxActive}, hits ${s.hits}, misses ${s.misses}, activations ${s.activations}, ` +
      `evictions ${s.evictions}, retirements ${s.retirements}, policy ${s.policy.name}`,
  );
  console.log(
    `store: ${join(dataDir, 'agentpool.db')} holds ${await pool.agents.count(project)} agents in project "${project}"`,
  );
} finally {
  unsubscribe();
  await pool.close();
  if (given === undefined) {
    rmSync(dataDir, { recursive: true, force: true });
    console.log(`removed ${dataDir}`);
  }
}
