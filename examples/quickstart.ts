/**
 * A first look at agentpool as a library: define agents in the embedded SQLite store, run one on
 * a thread with the built-in demo model (no key, no network) and a tool, then watch the pool
 * activate, reuse, evict and retire instances.
 *
 *   node examples/quickstart.ts            (or: npm start)
 */
import { createAgentPool, DEFAULT_PROJECT } from '../src/index.ts';

const dataDir = process.env.AGENTPOOL_DATA_DIR ?? './data';
const pool = await createAgentPool({ dataDir, pool: { maxActive: 2 } });
const project = DEFAULT_PROJECT;

try {
  for (const name of ['support', 'billing', 'research']) {
    const { agent, result } = await pool.agents.apply(project, {
      name,
      instructions: `You are the ${name} agent.`,
      model: 'demo/assistant',
      tools: ['builtin:calculator', 'builtin:current_time'],
      labels: { example: 'quickstart' },
    });
    console.log(`agent ${agent.name}: ${result} (version ${agent.activeVersion})`);
  }

  console.log('\na run on a thread, streamed:');
  const thread = await pool.threads.create(project);
  const handle = await pool.runs.start(project, 'support', { input: 'what is 17*23', threadId: thread.id });
  for await (const e of handle.stream.events()) {
    if (e.type === 'tool.call')
      console.log(`  #${e.seq} tool.call   ${e.toolName}(${JSON.stringify(e.input)})`);
    else if (e.type === 'tool.result')
      console.log(`  #${e.seq} tool.result ${JSON.stringify(e.output ?? e.error)}`);
    else if (e.type === 'text.delta') process.stdout.write(e.delta);
    else if (e.type === 'run.finished') console.log(`\n  #${e.seq} run.finished in ${e.run.steps} steps`);
    else if (e.type === 'run.failed')
      console.log(`\n  #${e.seq} run.failed ${e.error.code}: ${e.error.message}`);
  }
  const messages = await pool.threads.messages(project, thread.id);
  console.log(
    `  the thread now holds ${messages.data.length} messages: ${messages.data.map((m) => m.role).join(', ')}`,
  );

  console.log('\nmaxActive is 2: using billing and research evicts the least valuable idle instance');
  for (const name of ['billing', 'research']) {
    await (
      await pool.runs.start(project, name, { input: 'hello' })
    ).result;
  }

  console.log('update support: its next run uses version 2 on a fresh instance');
  await pool.agents.update(project, 'support', { instructions: 'You are the support agent, v2.' });
  const v2 = await (
    await pool.runs.start(project, 'support', { input: 'hi again', threadId: thread.id })
  ).result;
  console.log(`  ran on version ${v2.agentVersion}: ${v2.output}`);

  const s = pool.instances.stats();
  console.log(
    `\npool: active ${s.active}/${s.maxActive}, hits ${s.hits}, misses ${s.misses}, activations ${s.activations}, evictions ${s.evictions}, retirements ${s.retirements}, policy ${s.policy.name}`,
  );
  console.log(
    `store: ${dataDir}/agentpool.db holds ${await pool.agents.count(project)} agents in project "${project}"`,
  );
} finally {
  await pool.close();
}
