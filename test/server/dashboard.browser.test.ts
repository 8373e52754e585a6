/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`, or `CHROMIUM_PATH`)
 * driven by playwright-core loads `/dashboard` from a real server on a free port, signs in with the
 * admin key and then a project key, and checks that what it shows matches the API after runs were
 * made; the agents table searches and pages, the drill-down shows versions and recent runs, a run
 * link opens its events. It rewrites `docs/dashboard.png`. Fails (never skips) without Chromium.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { buildServer } from '../../src/server/app.ts';

const ADMIN = 'admin-key-for-the-dashboard-0123456789';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = resolve(import.meta.dirname, '../../docs/dashboard.png');

describe('the dashboard in Chromium', () => {
  let pool: AgentPool;
  let app: Awaited<ReturnType<typeof buildServer>>;
  let browser: Browser;
  let page: Page;
  let url: string;
  let alphaKey: string;

  const api = async <T>(path: string, key = ADMIN): Promise<T> => {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };
  const text = (selector: string) => page.locator(selector).first().innerText();
  /** Polls `check` until it holds (the page polls the server every 2 s); fails after 15 s. */
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (const deadline = Date.now() + 15_000; !(await check());) {
      if (Date.now() > deadline) assert.fail(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** Waits until the figure shows `expected`. */
  const figureIs = (name: string, expected: string) =>
    until(`${name} shows ${expected}`, async () => (await text(`[data-figure="${name}"]`)) === expected);
  /** Waits until `selector` matches `n` elements. */
  const rowsAre = (selector: string, n: number) =>
    until(`${n} × ${selector}`, async () => (await page.locator(selector).count()) === n);

  before(async () => {
    pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    app = await buildServer(pool, { adminKey: ADMIN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await pool.projects.create({ id: 'alpha' });
    alphaKey = (await pool.projects.createKey('alpha')).key;
    await pool.agents.create('alpha', { name: 'alpha-bot' });
    for (let i = 0; i < 30; i++) {
      await pool.agents.create('default', { name: `agent-${String(i).padStart(2, '0')}` });
    }
    await pool.agents.create('default', { name: 'support' });
    await pool.agents.update('default', 'support', { instructions: 'Be brief.' }); // version 2
    const run = async (agent: string, key: string) => {
      const res = await fetch(`${url}/v1/agents/${agent}/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ input: 'what is 2+2' }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    for (let i = 0; i < 3; i++) await run('support', ADMIN);
    await run('agent-01', ADMIN);
    await run('alpha-bot', alphaKey);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await pool?.close();
  });

  it('asks for a key, then shows the figures of /v1/pool/stats and the runs made', async () => {
    await page.goto(`${url}/dashboard`);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#key', ADMIN);
    await page.click('#login button[type=submit]');
    await figureIs('succeeded', '5');
    const stats = await api<{ active: number; hits: number; misses: number; activations: number }>(
      '/v1/pool/stats',
    );
    assert.equal(await text('[data-figure="active"]'), String(stats.active));
    assert.equal(await text('[data-figure="hits"]'), String(stats.hits));
    assert.equal(await text('[data-figure="misses"]'), String(stats.misses));
    assert.equal(await text('[data-figure="activations"]'), String(stats.activations));
    const live = await api<{ runs: { cost: number } }>('/v1/pool/live');
    assert.equal(await text('[data-figure="cost"]'), `$${live.runs.cost.toFixed(4)}`);
    assert.equal(await text('#scope'), 'whole pool (admin)');
    assert.equal(await page.locator('#slowest tbody tr').count(), 5);
    assert.equal(
      await page.evaluate('sessionStorage.getItem("agentpool.key")'),
      ADMIN,
      'the key is kept in session storage',
    );
  });

  it('pages and searches the agents table', async () => {
    const names = () => page.locator('#agent-table tbody tr td:first-child').allInnerTexts();
    await rowsAre('#agent-table tbody tr', 25);
    assert.equal((await names())[0], 'agent-00');
    await page.click('#next');
    await rowsAre('#agent-table tbody tr', 6);
    assert.deepEqual((await names()).slice(-1), ['support']);
    await page.fill('#search', 'agent-1');
    await rowsAre('#agent-table tbody tr', 10);
    assert.deepEqual((await names()).slice(0, 2), ['agent-10', 'agent-11']);
    await page.fill('#search', 'support');
    await rowsAre('#agent-table tbody tr', 1);
  });

  it('drills into an agent (versions, live instance, recent runs) and opens a run’s events', async () => {
    await page.click('a[data-agent="support"]');
    await page.locator('#detail').waitFor({ state: 'visible' });
    await rowsAre('#detail-runs tbody tr', 3);
    assert.deepEqual(await page.locator('#detail-versions tbody tr td:first-child').allInnerTexts(), [
      '2 (active)',
      '1',
    ]);
    assert.match(await text('#detail-instance'), /ready/);
    await page.locator('#detail-runs a[data-run]').first().click();
    await page.locator('#events li[data-event="run.finished"]').waitFor({ timeout: 15_000 });
    assert.ok((await page.locator('#events li').count()) >= 2);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("with a project key, shows that project's figures and agents only", async () => {
    await page.click('#logout');
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#key', alphaKey);
    await page.click('#login button[type=submit]');
    await page.locator('#scope', { hasText: 'project alpha' }).waitFor();
    await figureIs('succeeded', '1');
    const own = await api<{ active: number }>('/v1/pool/stats', alphaKey);
    assert.equal(await text('[data-figure="active"]'), String(own.active));
    await rowsAre('#agent-table tbody tr', 1);
    assert.equal(await text('#agent-table tbody tr td'), 'alpha-bot');
    assert.equal(await page.locator('#cluster').isVisible(), false);
  });
});
