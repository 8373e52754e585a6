// The dashboard page: asks for a key (kept in sessionStorage), polls GET /v1/pool/live every 2 s,
// pages the agents table through GET /v1/pool/live/agents, and drills into an agent and a run's
// events with the ordinary API. Plain DOM, inline SVG sparklines; nothing loaded from elsewhere.

const KEY = 'agentpool.key';
const POLL_MS = 2000;
const PAGE = 25;
/** The agents table (usage figures) is read again every this many polls: every 10 s. */
const AGENTS_EVERY = 5;

const $ = (selector) => document.querySelector(selector);
const state = {
  project: null,
  admin: false,
  cursors: [undefined],
  page: 0,
  query: '',
  timer: null,
  /** Bumped by restart(): a poll of an older generation does not re-arm (one polling loop). */
  generation: 0,
  /** Aborts the run events being read (another run opened, or the panel closed). */
  events: null,
  polls: 0,
};

function headers() {
  const h = {};
  const key = sessionStorage.getItem(KEY);
  if (key) h.authorization = `Bearer ${key}`;
  if (state.admin && state.project) h['agentpool-project'] = state.project;
  return h;
}

async function api(path) {
  const res = await fetch(path, { headers: headers() });
  if (res.status === 401) throw Object.assign(new Error('unauthenticated'), { status: 401 });
  const body = await res.json();
  if (!res.ok) throw new Error(body?.error?.message ?? `${res.status}`);
  return body;
}

const int = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const usd = (n) => (n === null || n === undefined ? '–' : `$${n.toFixed(n < 1 ? 4 : 2)}`);
const pct = (r) => (r === null || r === undefined ? '–' : `${(r * 100).toFixed(1)}%`);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function rows(table, list, cells) {
  const body = $(`${table} tbody`);
  body.replaceChildren(
    ...list.map((item) => {
      const tr = el('tr');
      for (const cell of cells(item)) tr.append(cell instanceof Node ? wrap(cell) : el('td', cell));
      return tr;
    }),
  );
}

function wrap(node) {
  const td = el('td');
  td.append(node);
  return td;
}

function pairs(table, object) {
  rows(table, Object.entries(object), ([k, v]) => [k, v]);
}

function figure(name, text) {
  const node = $(`[data-figure="${name}"]`);
  if (node) node.textContent = text;
}

/** A small line chart of `values` (nulls are gaps), with its latest value as the label. */
function sparkline(label, values, format = int) {
  const w = 180;
  const h = 40;
  const seen = values.filter((v) => v !== null);
  const top = seen.length === 0 ? null : Math.max(...seen);
  const max = Math.max(top ?? 0, Number.MIN_VALUE);
  const step = w / Math.max(1, values.length - 1);
  let d = '';
  values.forEach((v, i) => {
    if (v === null) return;
    d += `${d === '' || values[i - 1] === null ? 'M' : 'L'}${(i * step).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`;
  });
  const box = el('div', undefined, { class: 'chart' });
  const last = [...values].reverse().find((v) => v !== null);
  box.append(
    el(
      'span',
      `${label}: ${last === undefined ? '–' : format(last)} (max ${top === null ? '–' : format(top)})`,
    ),
  );
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', '#1559c1');
  path.setAttribute('stroke-width', '1.5');
  svg.append(path);
  box.append(svg);
  return box;
}

function runLink(id) {
  return el('a', id, { href: `#run/${id}`, 'data-run': id });
}

function renderLive(live) {
  const s = live.stats;
  state.admin = live.scope === 'pool';
  $('#scope').textContent = live.scope === 'pool' ? 'whole pool (admin)' : `project ${live.project}`;
  $('#updated').textContent = `updated ${new Date(live.at).toLocaleTimeString()}`;
  figure('active', int(s.active));
  figure('capacity', s.maxActive === undefined ? '–' : `${int(s.active)} / ${int(s.maxActive)}`);
  figure('hitRatio', pct(s.hitRatio));
  figure('hits', int(s.hits));
  figure('misses', int(s.misses));
  figure('activations', int(s.activations));
  figure('evictions', s.evictions === undefined ? '–' : int(s.evictions));
  figure('health', live.health.status);
  $('[data-figure="health"]').className = live.health.status;
  pairs('#by-state', s.byState);
  pairs('#by-tier', s.byTier);
  rows('#checks', live.health.checks, (c) => [
    c.name,
    c.status,
    c.value === undefined ? '' : `${int(c.value)} ${c.unit ?? ''}`,
  ]);

  const r = live.runs;
  figure('inFlight', int(r.inFlight.running + r.inFlight.queued));
  figure('lastMinute', int(r.lastMinute));
  figure('succeeded', int(r.succeeded));
  figure('failed', int(r.failed));
  figure('p50', r.p50Ms === null ? '–' : `${int(r.p50Ms)} ms`);
  figure('p99', r.p99Ms === null ? '–' : `${int(r.p99Ms)} ms`);
  figure('cost', usd(r.cost));

  const series = live.series;
  const pool = (k) => series.map((b) => (b.pool ? b.pool[k] : null));
  $('#pool-charts').replaceChildren(
    ...(live.scope === 'pool'
      ? [
          sparkline('live instances', pool('active')),
          sparkline('hits /10 s', pool('hits')),
          sparkline('activations /10 s', pool('activations')),
          sparkline('evictions /10 s', pool('evictions')),
          sparkline('activation ms', pool('activationMs'), (v) => v.toFixed(1)),
          sparkline('acquire wait ms', pool('acquireWaitMs'), (v) => v.toFixed(1)),
        ]
      : []),
  );
  $('#run-charts').replaceChildren(
    sparkline(
      'runs /10 s',
      series.map((b) => b.runs.succeeded + b.runs.failed + b.runs.cancelled),
    ),
    sparkline(
      'failed /10 s',
      series.map((b) => b.runs.failed),
    ),
    sparkline(
      'p99 ms',
      series.map((b) => b.runs.p99Ms),
    ),
    sparkline(
      'cost /10 s',
      series.map((b) => b.runs.cost),
      usd,
    ),
  );
  rows('#slowest', live.slowest, (x) => [runLink(x.runId), x.project, x.agent, x.status, int(x.durationMs)]);

  rows('#budgets', live.money.projects, (p) => [
    p.project,
    usd(p.today.spentUsd),
    usd(p.today.limitUsd),
    usd(p.month.spentUsd),
    usd(p.month.limitUsd),
  ]);
  rows('#top-agents', live.money.topAgents, (a) => [a.name, a.project, int(a.uses), usd(a.costUsd)]);
  rows('#models', s.models, (m) => {
    const b = el('span', m.breaker, { class: m.breaker });
    return [
      m.model,
      b,
      m.fallbacks === undefined ? '–' : int(m.fallbacks),
      m.retries === undefined ? '–' : int(m.retries),
    ];
  });

  const nodes = live.cluster?.nodes ?? [];
  $('#cluster').hidden = nodes.length < 2;
  rows('#nodes', nodes, (n) => [
    n.id,
    n.address ?? '–',
    int(n.runsInFlight),
    int(n.liveInstances),
    new Date(n.heartbeatAt).toLocaleTimeString(),
  ]);
  if (state.project === null) {
    state.project = live.project ?? 'default';
    void loadProjects();
    void loadAgents().catch(showError);
  } else if (++state.polls % AGENTS_EVERY === 0) {
    void loadAgents().catch(showError);
  }
}

async function loadProjects() {
  if (!state.admin) return;
  try {
    const page = await api('/v1/projects?limit=100');
    const select = $('#project');
    select.replaceChildren(...page.data.map((p) => el('option', p.id, { value: p.id })));
    select.value = state.project;
    $('#project-pick').hidden = false;
  } catch {
    // Development mode without projects to list: the default project only.
  }
}

async function loadAgents() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (state.query) params.set('q', state.query);
  const cursor = state.cursors[state.page];
  if (cursor) params.set('cursor', cursor);
  const page = await api(`/v1/pool/live/agents?${params}`);
  $('#agents-project').textContent = `in ${page.project}`;
  state.cursors[state.page + 1] = page.nextCursor ?? undefined;
  $('#prev').disabled = state.page === 0;
  $('#next').disabled = page.nextCursor === null;
  rows('#agent-table', page.data, (a) => [
    el('a', a.name, { href: `#agent/${encodeURIComponent(a.name)}`, 'data-agent': a.name }),
    a.version,
    a.tier,
    int(a.usage.uses),
    pct(a.usage.successRate),
    int(a.usage.meanLatencyMs),
    usd(a.usage.costUsd),
    a.instance ? a.instance.state : '–',
  ]);
}

async function showAgent(name) {
  const path = `/v1/agents/${encodeURIComponent(name)}`;
  const [agent, versions, stats] = await Promise.all([
    api(path),
    api(`${path}/versions?limit=20`),
    api(`${path}/stats`),
  ]);
  $('#detail').hidden = false;
  $('#detail-name').textContent = agent.name;
  const i = stats.live.instance;
  pairs(
    '#detail-instance',
    i
      ? { state: i.state, tier: i.tier, version: i.version, leases: i.leases, uses: i.uses }
      : { state: 'not live' },
  );
  const rollout = agent.rollout ? await api(`${path}/rollout`) : null;
  pairs(
    '#detail-rollout',
    rollout
      ? {
          candidate: rollout.candidateVersion,
          share: `${rollout.currentPercent}%`,
          stable: rollout.activeVersion,
        }
      : { rollout: 'none' },
  );
  rows('#detail-versions', versions.data, (v) => [
    v.version === agent.activeVersion ? `${v.version} (active)` : v.version,
    v.spec.model,
    new Date(v.createdAt).toLocaleString(),
  ]);
  rows('#detail-runs', stats.live.recentRuns, (r) => [
    runLink(r.runId),
    r.status,
    r.version,
    int(r.durationMs),
    usd(r.cost),
  ]);
  $('#detail').scrollIntoView();
}

/** Reads a finished run's events (SSE over fetch, so the key goes in a header) into the list. */
async function showRun(id) {
  $('#run-events').hidden = false;
  $('#run-id').textContent = id;
  const list = $('#events');
  list.replaceChildren();
  stopEvents();
  const reading = new AbortController();
  state.events = reading;
  const res = await fetch(`/v1/runs/${encodeURIComponent(id)}/events`, {
    headers: headers(),
    signal: reading.signal,
  });
  if (!res.ok) {
    list.append(el('li', `error ${res.status}`));
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let end;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const chunk = text.slice(0, end);
      text = text.slice(end + 2);
      const type = /^event: (.*)$/m.exec(chunk)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(chunk)?.[1] ?? '';
      const li = el('li', undefined, { 'data-event': type });
      li.append(el('b', type), el('code', ` ${data.slice(0, 200)}`));
      list.append(li);
    }
  }
  $('#run-events').scrollIntoView();
}

/** Stops reading a run's events, if any are being read. */
function stopEvents() {
  state.events?.abort();
  state.events = null;
}

function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith('agent/')) void showAgent(hash.slice(6)).catch(showError);
  else if (hash.startsWith('run/'))
    void showRun(hash.slice(4)).catch((err) => {
      if (err.name !== 'AbortError') showError(err);
    });
}

function showError(err) {
  $('#updated').textContent = `error: ${err.message}`;
}

async function poll() {
  const generation = state.generation;
  try {
    renderLive(await api('/v1/pool/live'));
    $('#login').hidden = true;
    $('#main').hidden = false;
    $('#logout').hidden = sessionStorage.getItem(KEY) === null;
  } catch (err) {
    if (err.status === 401) {
      $('#main').hidden = true;
      $('#login').hidden = false;
      if (sessionStorage.getItem(KEY) !== null) $('#login-error').textContent = 'That key was refused.';
      return; // no polling until a key is given
    }
    showError(err);
  }
  if (generation === state.generation) state.timer = setTimeout(poll, POLL_MS);
}

function restart() {
  clearTimeout(state.timer);
  state.generation++; // a poll still waiting for its answer ends there
  stopEvents();
  state.project = null;
  state.page = 0;
  state.cursors = [undefined];
  state.query = '';
  $('#search').value = '';
  $('#detail').hidden = true;
  $('#run-events').hidden = true;
  $('#project-pick').hidden = true;
  void poll();
}

$('#login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $('#key').value.trim());
  $('#key').value = '';
  restart();
});
$('#logout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  $('#login-error').textContent = '';
  restart();
});
let searching;
$('#search').addEventListener('input', () => {
  clearTimeout(searching);
  searching = setTimeout(() => {
    state.query = $('#search').value.trim();
    state.page = 0;
    state.cursors = [undefined];
    void loadAgents().catch(showError);
  }, 200);
});
$('#next').addEventListener('click', () => {
  state.page++;
  void loadAgents().catch(showError);
});
$('#prev').addEventListener('click', () => {
  state.page = Math.max(0, state.page - 1);
  void loadAgents().catch(showError);
});
$('#project').addEventListener('change', () => {
  state.project = $('#project').value;
  state.page = 0;
  state.cursors = [undefined];
  void loadAgents().catch(showError);
});
$('#detail-close').addEventListener('click', () => ($('#detail').hidden = true));
$('#run-close').addEventListener('click', () => {
  stopEvents();
  $('#run-events').hidden = true;
});
window.addEventListener('hashchange', route);
route();
void poll();
