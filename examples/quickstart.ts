/**
 * A first look at agentpool as a library: define agents in the embedded SQLite store, let the
 * pool activate them on demand, and watch instances move through their lifecycle.
 *
 *   node examples/quickstart.ts            (or: npm start)
 */
import { createAgentPool, DEFAULT_PROJECT } from '../src/index.ts';

const dataDir = process.env.AGENTPOOL_DATA_DIR ?? './data';
const pool = await createAgentPool({ dataDir, pool: { maxActive: 2 } });

pool.events.on('instance.state_changed', (e) => {
  console.log(`  event  ${e.name}@v${e.version}  ${e.from} → ${e.to}  (${e.reason})`);
});

try {
  const project = DEFAULT_PROJECT;
  for (const name of ['support', 'billing', 'research']) {
    const { agent, result } = await pool.agents.apply(project, {
      name,
      instructions: `You are the ${name} agent.`,
      labels: { example: 'quickstart' },
    });
    console.log(`agent ${agent.name}: ${result} (version ${agent.activeVersion})`);
  }

  console.log('\nacquire support twice: one activation, then a warm hit');
  for (let i = 0; i < 2; i++) {
    using lease = await pool.instances.acquire(project, 'support');
    console.log(`  lease on ${lease.instance.id} (${lease.instance.state})`);
  }

  console.log('\nmaxActive is 2: using billing and research evicts the least valuable idle instance');
  for (const name of ['billing', 'research']) {
    using _lease = await pool.instances.acquire(project, name);
  }

  console.log('\nupdate support: its next lease runs on version 2');
  await pool.agents.update(project, 'support', { instructions: 'You are the support agent, v2.' });
  {
    using lease = await pool.instances.acquire(project, 'support');
    console.log(`  lease on version ${lease.agent.activeVersion}`);
  }

  const s = pool.instances.stats();
  console.log(
    `\nstats: active ${s.active}/${s.maxActive}, hits ${s.hits}, misses ${s.misses}, activations ${s.activations}, evictions ${s.evictions}, policy ${s.policy.name}`,
  );
  console.log(
    `store: ${dataDir}/agentpool.db holds ${await pool.agents.count(project)} agents in project "${project}"`,
  );
} finally {
  await pool.close();
}
