/**
 * The dashboard and `agentpool top` on a cluster of two `agentpool serve` processes (PostgreSQL +
 * Redis): both list the two nodes, which a single node does not show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { runCli } from '../cli/in-process.ts';
import { ADMIN_KEY, startCluster, type TestCluster } from '../support/cluster.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the dashboard of a cluster', () => {
  let cluster: TestCluster;
  let browser: Browser;
  before(async () => {
    cluster = await startCluster({ size: 2, label: 'dash' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  /** Polls until `check` holds (heartbeats arrive every few seconds); fails after 20 s. */
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (const deadline = Date.now() + 20_000; !(await check());) {
      if (Date.now() > deadline) assert.fail(`never: ${what}\n${cluster.logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('GET /v1/pool/live lists both nodes', async () => {
    await until('two nodes in /v1/pool/live', async () => {
      const live = (await (await cluster.call(0, 'GET', '/v1/pool/live')).json()) as {
        cluster: { mode: string; nodes: { id: string }[] };
      };
      return live.cluster.mode === 'cluster' && live.cluster.nodes.length === 2;
    });
  });

  it('the page shows the nodes, and top --once prints them', async () => {
    const page = await browser.newPage();
    await page.goto(`${cluster.nodes[0]!.url}/dashboard`);
    await page.fill('#key', ADMIN_KEY);
    await page.click('#login button[type=submit]');
    await page.locator('#cluster').waitFor({ state: 'visible', timeout: 20_000 });
    assert.deepEqual(
      (await page.locator('#nodes tbody tr td:first-child').allInnerTexts()).sort(),
      cluster.nodes.map((n) => n.id).sort(),
    );
    const top = await runCli(['top', '--once'], {
      AGENTPOOL_URL: cluster.nodes[1]!.url,
      AGENTPOOL_API_KEY: ADMIN_KEY,
    });
    assert.equal(top.code, 0, top.stderr);
    for (const node of cluster.nodes) assert.match(top.stdout, new RegExp(`\\n {2}${node.id} {2}runs \\d+`));
  });
});
