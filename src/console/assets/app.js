// orca's web console: plain JavaScript, no build step, no dependencies.
// Every read and every action goes through the same /v1 routes the CLI
// uses; the session cookie authenticates them and state changes carry the
// page's CSRF token. The journal's event stream (/v1/events) drives every
// view: a run's task rows are patched from the events themselves (in one
// animation frame per burst); what an event cannot say is fetched again and
// patched in place (never a page reload).
'use strict';

const CSRF = document.querySelector('meta[name="orca-csrf"]').content;
const ROW = 30; // px, one task row of the virtualised list
const TREE_MAX = 200; // children shown under one tree node

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function setText(el, text) {
  const t = text === undefined || text === null ? '' : String(text);
  if (el.textContent !== t) el.textContent = t;
}

function status(el, s) {
  setText(el, s || '');
  const cls = 'st st-' + String(s || '').replace(/[^a-z_]/gi, '_');
  if (el.className !== cls) el.className = cls;
}

const enc = encodeURIComponent;

function time(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleTimeString();
}

function money(u) {
  if (!u) return '';
  const c = u.cost_usd ?? u.cost?.usd ?? u.total_cost_usd;
  const tok = (u.input_tokens || 0) + (u.output_tokens || 0);
  const parts = [];
  if (typeof c === 'number') parts.push('$' + c.toFixed(4));
  if (tok) parts.push(tok + ' tok');
  return parts.join(' · ');
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || ('HTTP ' + status));
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (init.method !== 'GET') {
    init.headers['content-type'] = 'application/json';
    init.headers['x-orca-csrf'] = CSRF;
    init.body = JSON.stringify(opts.body || {});
  }
  const r = await fetch(path, init);
  if (r.status === 401) signedOut();
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new ApiFailure(r.status, body);
  return body;
}

function flash(text, isError) {
  const box = document.getElementById('flash');
  const el = h('div', { class: isError ? 'err' : '', role: isError ? 'alert' : null, text });
  box.append(el);
  setTimeout(() => el.remove(), isError ? 8000 : 4000);
}

function signedOut() {
  const v = document.getElementById('view');
  v.replaceChildren(h('h1', { text: 'Signed out' }),
    h('p', {}, 'The session ended. Run ', h('code', { text: 'orca ui' }), ' for a new link.'));
  setConn('signed out');
}

// Runs `fn` with at most one call in flight; calls made meanwhile collapse
// into one more run after it.
function coalesce(fn) {
  let running = false, again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await fn(); } catch (e) { if (!(e instanceof ApiFailure && e.status === 401)) console.warn(e); }
    finally {
      running = false;
      if (again) { again = false; run(); }
    }
  };
  return run;
}

// `coalesce`, and then at least `ms` between two runs — more when a read
// is slow (three times its own duration): for reads whose cost grows with
// the run (counts, the tree), however many events arrive, so they never
// hold the browser's few connections to the server.
function throttle(fn, ms) {
  return coalesce(async () => {
    const t0 = performance.now();
    await fn();
    const took = performance.now() - t0;
    await new Promise((r) => setTimeout(r, Math.max(ms, 3 * took)));
  });
}

// Runs `fn` once before the next frame (or within 100 ms when the page
// is hidden and frames stop): a burst of events becomes one DOM update.
function frameBatcher(fn) {
  let queued = false;
  const run = () => { if (!queued) return; queued = false; fn(); };
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(run);
    setTimeout(run, 100);
  };
}

// ---------------------------------------------------------------- confirm

// Every action is confirmed before it is sent. Resolves to null (cancelled)
// or the text typed (when `input` names a field).
function confirmAction(title, detail, input) {
  const d = document.getElementById('confirm');
  setText(document.getElementById('confirm-title'), title);
  setText(document.getElementById('confirm-detail'), detail || '');
  const label = document.getElementById('confirm-input-label');
  const field = document.getElementById('confirm-input');
  label.hidden = !input;
  field.value = '';
  field.required = !!(input && input.required);
  if (input) setText(label.querySelector('span'), input.label);
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      resolve(d.returnValue === 'ok' ? field.value : null);
    }, { once: true });
    d.returnValue = '';
    d.showModal();
    (input ? field : document.getElementById('confirm-ok')).focus();
  });
}

async function act(title, detail, send, input) {
  const value = await confirmAction(title, detail, input);
  if (value === null) return;
  try {
    const r = await send(value);
    flash(title + ': ' + (r?.result || 'done'));
  } catch (e) {
    flash(title + ' failed: ' + e.message, true);
  }
}

const actions = {
  stop: (run) => act('Stop run ' + run, 'Queued tasks end skip; running attempts get their grace.',
    (reason) => api(`/v1/fleet/runs/${enc(run)}/stop`, { method: 'POST', body: reason ? { reason } : {} }),
    { label: 'Reason (optional)' }),
  pause: (run) => act('Pause run ' + run, 'No new tasks are leased; running attempts go on.',
    () => api(`/v1/fleet/runs/${enc(run)}/pause`, { method: 'POST' })),
  resume: (run) => act('Resume run ' + run, 'Tasks are leased again.',
    () => api(`/v1/fleet/runs/${enc(run)}/resume`, { method: 'POST' })),
  // Attempts are reached by their actor path, as `orca send` does.
  attempt: (verb, run, task, n) => act(`${verb[0].toUpperCase()}${verb.slice(1)} attempt ${task}:${n}`,
    verb === 'interrupt' ? 'The attempt ends skip.' : 'A new attempt starts, using up none.',
    () => api('/v1/actors/messages', { method: 'POST', body: { path: `/runs/${run}/attempts/${task}:${n}`, message: verb } })),
  verdict: (run, task, n, verdict) => act(`Verdict ${verdict} on ${task}:${n}`, 'Recorded on the receipt, journaled with surface web.',
    (note) => api(`/v1/fleet/runs/${enc(run)}/tasks/${enc(task)}/verdict`, { method: 'POST', body: { verdict, note: note || '', attempt: n } }),
    { label: 'Note (optional)' }),
  agent: (id, verb, extra) => {
    const needs = verb === 'tell' ? { label: 'Message', required: true } : null;
    return act(`${verb[0].toUpperCase()}${verb.slice(1)} agent ${id}` + (extra ? ' ' + extra : ''), '',
      (text) => api(`/v1/agents/${enc(id)}/${verb}`, { method: 'POST', body: verb === 'tell' ? { text } : extra ? { request: extra } : {} }),
      needs);
  },
};

function btn(label, onclick, cls) {
  return h('button', { type: 'button', class: cls || '', onclick, 'data-action': label.toLowerCase() }, label);
}

// ---------------------------------------------------------------- feed

// A stream read whose data is already buffered resolves as a microtask:
// a fast stream would starve rendering, input and timers. Readers call
// this after each chunk; it yields to the page every few milliseconds.
let lastYield = 0;
async function breathe() {
  const now = performance.now();
  if (now - lastYield < 8) return;
  await new Promise((r) => setTimeout(r, 0));
  lastYield = performance.now();
}

const feed = { listeners: new Set(), next: 1, times: [] };

function setConn(text) {
  const c = document.getElementById('conn');
  setText(c, text);
  c.className = 'conn' + (text === 'live' ? ' live' : '');
}

// The journal's end: the tree's journal node says `last seq N`.
async function journalEnd() {
  const t = await api('/v1/tree');
  const j = (t.children || []).find((c) => c.kind === 'journal' || c.path === '/journal');
  const m = /last seq (\d+)/.exec(j?.detail || '');
  return m ? Number(m[1]) : 0;
}

// Reads /v1/events (server-sent events) with fetch, resuming from the last
// sequence number seen after a drop.
async function startFeed() {
  try { feed.next = (await journalEnd()) + 1; } catch (_) { feed.next = 1; }
  for (;;) {
    try {
      const r = await fetch('/v1/events?from=' + feed.next, { credentials: 'same-origin', headers: { accept: 'text/event-stream' } });
      if (r.status === 401) { signedOut(); return; }
      if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
      setConn('live');
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // When this chunk arrived (the console bench splits its latency
        // into journal → browser and browser → DOM with it).
        const recv = Date.now();
        buf += value.replace(/\r\n/g, '\n');
        let i, start = 0;
        while ((i = buf.indexOf('\n\n', start)) >= 0) {
          const block = buf.slice(start, i);
          start = i + 2;
          let data = '';
          for (const line of block.split('\n')) if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
          if (!data) continue;
          let ev;
          try { ev = JSON.parse(data); } catch (_) { continue; }
          feed.next = ev.seq + 1;
          for (const l of feed.listeners) { try { l(ev, recv); } catch (e) { console.warn(e); } }
        }
        buf = buf.slice(start);
        await breathe();
      }
    } catch (_) { /* reconnect below */ }
    setConn('reconnecting');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// `/runs/<run>/attempts/<task>:<n>` → {run, task, n}; `/runs/<run>` → {run}.
function parseActor(path) {
  const m = /^\/runs\/([^/]+)(?:\/attempts\/(.+):(\d+))?/.exec(path || '');
  if (!m) return null;
  return { run: m[1], task: m[2], n: m[3] ? Number(m[3]) : undefined };
}

// ---------------------------------------------------------------- keyed lists

// Makes `parent`'s children the rendered `items`, in order, reusing the
// element of each key (`make` builds one, `update` refreshes it).
function patchKeyed(parent, items, key, make, update) {
  const have = new Map();
  for (const el of parent.children) if (el.dataset.key !== undefined) have.set(el.dataset.key, el);
  let prev = null;
  for (const item of items) {
    const k = key(item);
    let el = have.get(k);
    if (el) have.delete(k);
    else { el = make(item); el.dataset.key = k; }
    update(el, item);
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (want !== el) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of have.values()) el.remove();
}

// ---------------------------------------------------------------- tree

function treeNodeEl(node) {
  const name = h('span', { class: 'name' });
  const state = h('span', { class: 'st' });
  const facts = h('span', { class: 'facts' });
  const acts = h('span', { class: 'node-actions' });
  const li = h('li', { 'data-path': node.path }, h('span', { class: 'node' }, name, state, facts, acts), h('ul'));
  li._parts = { name, state, facts, acts, sig: '' };
  return li;
}

function treeFacts(n) {
  const f = [];
  if (n.restarts) f.push('restarts ' + n.restarts);
  if (n.strategy) f.push(n.strategy);
  if (n.intensity) f.push(`intensity ${n.restarts || 0}/${n.intensity[0]} in ${Math.round(n.intensity[1] / 1000)}s`);
  if (n.detail) f.push(n.detail);
  return f.join(' · ');
}

function updateTreeNode(li, n) {
  const p = li._parts;
  const a = parseActor(n.path);
  if (a && a.task === undefined && (n.kind === 'run')) {
    if (!p.name.firstChild || p.name.firstChild.tagName !== 'A') p.name.replaceChildren(h('a', { href: '#/run/' + enc(a.run) }));
    setText(p.name.firstChild, n.name);
  } else if (a && a.task !== undefined) {
    if (!p.name.firstChild || p.name.firstChild.tagName !== 'A') p.name.replaceChildren(h('a', { href: `#/attempt/${enc(a.run)}/${enc(a.task)}/${a.n}` }));
    setText(p.name.firstChild, n.name);
  } else setText(p.name, n.name);
  status(p.state, n.state);
  setText(p.facts, treeFacts(n));
  // Actions for what is running (rebuilt only when the state changes).
  const sig = n.kind + ':' + n.state;
  if (p.sig !== sig) {
    p.sig = sig;
    const live = !/^(passed|failed|pass|fail|skip|timeout|cancelled|succeeded|escalated|stopped|ended|done|partial)/.test(n.state);
    const kids = [];
    if (a && a.task !== undefined && live) {
      kids.push(btn('Interrupt', () => actions.attempt('interrupt', a.run, a.task, a.n), 'danger'));
      kids.push(btn('Restart', () => actions.attempt('restart', a.run, a.task, a.n)));
    } else if (a && n.kind === 'run' && live) {
      kids.push(btn('Pause', () => actions.pause(a.run)), btn('Resume', () => actions.resume(a.run)),
        btn('Stop', () => actions.stop(a.run), 'danger'));
    }
    p.acts.replaceChildren(...kids);
  }
  let kids = n.children || [];
  if (kids.length > TREE_MAX) {
    // A big run: what is not passed first (live, failed, waiting), then
    // the rest, up to TREE_MAX; the task list has every task.
    const busy = kids.filter((c) => c.state !== 'pass');
    const rest = kids.length - TREE_MAX;
    kids = busy.concat(kids.filter((c) => c.state === 'pass')).slice(0, TREE_MAX);
    kids.push({ path: n.path + '#more', name: `… ${rest} more`, kind: 'more', state: '', children: [] });
  }
  patchKeyed(li.lastChild, kids, (c) => c.path, treeNodeEl, updateTreeNode);
}

function treeView(run) {
  const root = h('ul', { class: 'tree', role: 'tree', id: 'tree' });
  const refresh = throttle(async () => {
    const t = await api('/v1/tree' + (run ? '?run=' + enc(run) : ''));
    patchKeyed(root, [t], (c) => c.path, treeNodeEl, updateTreeNode);
  }, 250);
  return { el: root, refresh, event: () => refresh() };
}

// ---------------------------------------------------------------- views

const views = {};

views.runs = (main) => {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const statusSel = h('select', { id: 'f-status' }, h('option', { value: '' }, 'any'),
    ...['queued', 'running', 'paused', 'succeeded', 'failed', 'awaiting_verdict', 'cancelled', 'escalated', 'suspended']
      .map((s) => h('option', { value: s }, s)));
  statusSel.value = q.get('status') || '';
  const name = h('input', { id: 'f-name', type: 'search', placeholder: 'name or id', value: q.get('name') || '' });
  const label = h('input', { id: 'f-label', type: 'search', placeholder: 'key=value', value: q.get('label') || '' });
  const tbody = h('tbody', { id: 'runs' });
  const empty = h('p', { class: 'muted', id: 'runs-empty', hidden: true }, 'No runs match.');
  main.append(h('h1', { text: 'Runs' }),
    h('div', { class: 'filters', role: 'search' },
      h('label', {}, 'Status', statusSel), h('label', {}, 'Name', name), h('label', {}, 'Label', label)),
    h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ...['Run', 'Name', 'Status', 'Tasks', 'Passed', 'Failed', 'Running', 'Queued', 'Labels', 'Submitted']
        .map((c, i) => h('th', { class: i >= 8 ? 'wide' : '' }, c)))), tbody)), empty);
  let runs = [];
  const render = () => {
    const st = statusSel.value, nm = name.value.trim().toLowerCase(), lb = label.value.trim();
    const [lk, lv] = lb.split('=');
    const shown = runs.filter((r) => (!st || r.status === st)
      && (!nm || r.run.toLowerCase().includes(nm) || (r.name || '').toLowerCase().includes(nm))
      && (!lb || Object.entries(r.labels || {}).some(([k, v]) => k === lk && (lv === undefined || v === lv))));
    empty.hidden = shown.length > 0;
    patchKeyed(tbody, shown, (r) => r.run, () => h('tr', {}, h('td', {}, h('a', {})), ...Array.from({ length: 9 }, (_, i) => h('td', { class: i >= 7 ? 'wide' : '' }))),
      (tr, r) => {
        const c = tr.children, n = r.counts || {};
        const a = c[0].firstChild; a.href = '#/run/' + enc(r.run); setText(a, r.run);
        setText(c[1], r.name); status(c[2], r.status);
        const total = Object.entries(n).filter(([k]) => ['queued', 'running', 'retrying', 'passed', 'partial', 'failed', 'timed_out', 'cancelled'].includes(k)).reduce((s, [, v]) => s + v, 0);
        setText(c[3], total); setText(c[4], n.passed); setText(c[5], (n.failed || 0) + (n.timed_out || 0));
        setText(c[6], n.running); setText(c[7], n.queued);
        setText(c[8], Object.entries(r.labels || {}).map(([k, v]) => k + '=' + v).join(' '));
        setText(c[9], time(r.submitted));
      });
  };
  const sync = () => {
    const p = new URLSearchParams();
    if (statusSel.value) p.set('status', statusSel.value);
    if (name.value) p.set('name', name.value);
    if (label.value) p.set('label', label.value);
    history.replaceState(null, '', '#/runs' + (p.toString() ? '?' + p : ''));
    render();
  };
  statusSel.addEventListener('change', sync); name.addEventListener('input', sync); label.addEventListener('input', sync);
  const refresh = throttle(async () => { runs = await api('/v1/fleet/runs?brief=true'); render(); }, 250);
  refresh();
  return { event: (ev) => { if ((ev.actor || '').startsWith('/runs')) refresh(); } };
};

views.tree = (main) => {
  const t = treeView(null);
  main.append(h('h1', { text: 'Supervision tree' }), t.el);
  t.refresh();
  return { event: t.event };
};

// One run: counts, spend, its subtree, every task (virtualised), a timeline.
views.run = (main, runId) => {
  const head = h('div', { class: 'cards', id: 'run-cards' });
  const title = h('h1', {}, 'Run ', h('span', { class: 'mono', text: runId }), ' ', h('span', { id: 'run-status', class: 'st' }));
  const acts = h('div', { class: 'actions' },
    btn('Pause', () => actions.pause(runId)), btn('Resume', () => actions.resume(runId)), btn('Stop', () => actions.stop(runId), 'danger'));
  const tree = treeView(runId);
  const filter = h('input', { type: 'search', id: 'task-filter', placeholder: 'task, phase or result' });
  const list = h('div', { class: 'vlist', id: 'tasks', role: 'table', 'aria-label': 'Tasks', tabindex: '0' });
  const spacer = h('div', { style: '' });
  const header = h('div', { class: 'vrow vhead', role: 'row' }, ...['Task', 'Phase', 'Result', 'Tries', 'Receipt', 'Usage', 'Actions'].map((c, i) => h('span', { role: 'columnheader', class: i === 4 || i === 5 ? 'wide' : '' }, c)));
  list.append(header, spacer);
  const timeline = h('ol', { class: 'timeline', id: 'timeline', 'aria-label': 'Journal events of this run' });
  main.append(title, acts, head, h('h2', { text: 'Tree' }), tree.el,
    h('h2', { text: 'Tasks' }), h('div', { class: 'filters' }, h('label', {}, 'Filter', filter), h('span', { id: 'task-count', class: 'muted' })), list,
    h('h2', { text: 'Timeline' }), timeline);

  const tasks = []; // TaskSummary-like rows, in spec order
  const index = new Map(); // task id -> position in `tasks`
  let shown = []; // positions of rows passing the filter
  const rows = new Map(); // position -> row element (visible only)

  const rowOf = (t) => ({
    id: t.id, phase: String(t.phase).toLowerCase(),
    result: t.result || '', attempts: Array.isArray(t.attempts) ? t.attempts.length : t.attempts,
    receipt: t.receipt || (Array.isArray(t.attempts) ? (t.attempts[t.attempts.length - 1] || {}).receipt : null),
    usage: t.usage || (Array.isArray(t.attempts) ? (t.attempts[t.attempts.length - 1] || {}).usage : null),
    live: Array.isArray(t.attempts) ? t.attempts.filter((a) => !a.result).map((a) => a.n) : null,
  });
  const makeRow = () => {
    const r = h('div', { class: 'vrow', role: 'row' }, h('span', {}, h('a', {})), h('span', { class: 'st' }), h('span', { class: 'st' }),
      h('span', {}), h('span', { class: 'wide' }), h('span', { class: 'wide' }), h('span', {}));
    r._sig = '';
    return r;
  };
  const fillRow = (r, t) => {
    const c = r.children;
    const a = c[0].firstChild;
    const n = t.receipt?.attempt || t.attempts || 1;
    const href = `#/attempt/${enc(runId)}/${enc(t.id)}/${n}`;
    if (a.getAttribute('href') !== href) a.setAttribute('href', href);
    setText(a, t.id);
    status(c[1], t.phase); status(c[2], t.result);
    setText(c[3], t.attempts);
    const rc = t.receipt;
    setText(c[4], rc ? [rc.result, rc.failure_source && 'source ' + rc.failure_source, rc.verdict && 'verdict ' + rc.verdict.verdict, rc.summary].filter(Boolean).join(' · ') : '');
    setText(c[5], money(t.usage));
    const awaiting = rc && rc.result === 'partial' && !rc.verdict;
    const sig = (awaiting ? 'v' : '') + (t.phase === 'running' ? 'r' : '') + n;
    if (r._sig !== sig) {
      r._sig = sig;
      const kids = [];
      if (awaiting) kids.push(btn('Pass', () => actions.verdict(runId, t.id, rc.attempt, 'pass')), btn('Fail', () => actions.verdict(runId, t.id, rc.attempt, 'fail'), 'danger'));
      if (t.phase === 'running') kids.push(btn('Interrupt', () => actions.attempt('interrupt', runId, t.id, n), 'danger'));
      c[6].replaceChildren(...kids);
    }
  };
  // Renders the rows in view (plus a margin); the rest do not exist.
  const paint = () => {
    spacer.style.height = (shown.length + 1) * ROW + 'px';
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
    const last = Math.min(shown.length, first + Math.ceil((list.clientHeight || 600) / ROW) + 10);
    const keep = new Set();
    for (let i = first; i < last; i++) {
      const pos = shown[i];
      keep.add(pos);
      let r = rows.get(pos);
      if (!r) { r = makeRow(); rows.set(pos, r); list.append(r); }
      r.style.top = (i + 1) * ROW + 'px';
      r.dataset.task = tasks[pos].id;
      fillRow(r, tasks[pos]);
    }
    for (const [pos, r] of rows) if (!keep.has(pos)) { r.remove(); rows.delete(pos); }
  };
  const refilter = () => {
    const f = filter.value.trim().toLowerCase();
    shown = [];
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i];
      if (!f || t.id.toLowerCase().includes(f) || t.phase === f || t.result === f) shown.push(i);
    }
    setText(document.getElementById('task-count'), `${shown.length} of ${tasks.length}`);
    for (const r of rows.values()) r.remove();
    rows.clear();
    paint();
  };
  list.addEventListener('scroll', () => requestAnimationFrame(paint), { passive: true });
  filter.addEventListener('input', refilter);

  const applyHead = (s) => {
    status(document.getElementById('run-status'), s.status);
    const n = s.counts || {};
    const cards = [['queued', n.queued], ['running', n.running], ['passed', n.passed], ['partial', n.partial], ['failed', n.failed],
      ['timed out', n.timed_out], ['cancelled', n.cancelled], ['restarts', s.restarts], ['strategy', s.strategy],
      ['cost', money(s.spend?.usage || s.spend) || (s.spend?.cost_usd !== undefined ? '$' + Number(s.spend.cost_usd).toFixed(4) : '—')]];
    patchKeyed(head, cards, (c) => c[0], () => h('div', { class: 'card' }, h('span', { class: 'muted' }), h('b')),
      (el, c) => { setText(el.firstChild, c[0]); setText(el.lastChild, c[1] ?? 0); el.dataset.count = c[0]; });
  };
  const headRefresh = throttle(async () => applyHead(await api(`/v1/fleet/runs/${enc(runId)}?brief=true`)), 250);

  // Live updates. A task's row is patched from the event itself — no read
  // per event: a 10,000-task run sends hundreds a second, and reads queue
  // behind the browser's six connections per host — and the rows touched
  // by a burst are painted once, in the next frame. Only what an event
  // cannot say (a verdict amending a receipt, a type this page does not
  // know) is read again, one task at a time.
  const ENVELOPE = new Set(['seq', 'at', 'actor', 'type']);
  const dirty = new Set(); // positions patched since the last frame
  const pendingEvents = []; // timeline entries since the last frame
  // When `window.orcaLatency` is an array (the console bench sets it), each
  // task event's [journal → DOM, journal → browser] in ms is pushed there.
  let measured = [];
  let loading = true;
  const early = []; // events that arrived while the run was being loaded
  const flush = frameBatcher(() => {
    for (const pos of dirty) { const r = rows.get(pos); if (r) fillRow(r, tasks[pos]); }
    dirty.clear();
    if (pendingEvents.length) {
      timeline.append(...pendingEvents.splice(0).slice(-500).map(eventEl));
      while (timeline.children.length > 500) timeline.firstChild.remove();
      timeline.scrollTop = timeline.scrollHeight;
    }
    if (measured.length) {
      const now = Date.now();
      if (Array.isArray(window.orcaLatency)) for (const [at, recv] of measured) window.orcaLatency.push([now - at, recv - at]);
      measured = [];
    }
  });
  const stale = new Set(); // task ids to read again
  const reread = coalesce(async () => {
    while (stale.size) {
      const id = stale.values().next().value;
      stale.delete(id);
      const i = await api(`/v1/fleet/runs/${enc(runId)}/tasks/${enc(id)}`);
      const pos = index.get(id);
      if (pos !== undefined) { tasks[pos] = rowOf(i.task); dirty.add(pos); flush(); }
    }
  });
  // The task an event is about, if any.
  const taskOf = (ev) => {
    if (typeof ev.task === 'string') return ev.task;
    if (ev.attempt && typeof ev.attempt === 'object') return ev.attempt.task;
    if (ev.type === 'RestartScheduled') return ev.child;
    const p = parseActor(ev.path) || parseActor(ev.actor);
    return p?.task;
  };
  // Patches row `t` from `ev`; false when the event cannot say enough.
  const patch = (t, ev) => {
    switch (ev.type) {
      case 'ChildStarted': case 'ChildRestarted': {
        const p = parseActor(ev.path);
        if (p?.n !== undefined) { t.phase = 'running'; t.attempts = Math.max(t.attempts || 0, p.n); }
        return true;
      }
      case 'RestartScheduled': t.phase = ev.delay_ms > 0 ? 'backoff' : 'queued'; return true;
      case 'ReceiptRecorded': {
        const rc = {};
        for (const [k, v] of Object.entries(ev)) if (!ENVELOPE.has(k)) rc[k] = v;
        t.receipt = rc;
        return true;
      }
      case 'AttemptUsage': if (ev.attempt?.attempt >= (t.attempts || 0)) t.usage = ev.record; return true;
      case 'TaskFinished': t.phase = 'finished'; t.result = ev.result; return true;
      case 'TaskEnqueued': case 'AttemptStarted': case 'AttemptExited': case 'AttemptFinished':
      case 'AttemptInterrupted': case 'WorkerReported': case 'ChildFailed': case 'ChildStopped':
      case 'Alert': case 'AlertRaised':
        return true; // nothing the row shows
      default: return false;
    }
  };
  const onEvent = (ev, recv) => {
    pendingEvents.push(ev);
    const id = taskOf(ev);
    if (id !== undefined && id !== null) {
      let pos = index.get(id);
      if (pos === undefined && ev.type === 'TaskEnqueued') {
        pos = tasks.length;
        index.set(id, pos);
        tasks.push({ id, phase: 'queued', result: '', attempts: 0, receipt: null, usage: null, live: [] });
        refilter();
      }
      if (pos !== undefined) {
        if (patch(tasks[pos], ev)) dirty.add(pos);
        else { stale.add(id); reread(); }
        if (Array.isArray(window.orcaLatency) && ev.at && recv) measured.push([Date.parse(ev.at), recv]);
      }
    }
    flush();
    headRefresh();
    tree.refresh();
  };
  const load = async () => {
    const s = await api(`/v1/fleet/runs/${enc(runId)}`);
    tasks.length = 0; index.clear();
    for (const t of s.tasks || []) { index.set(t.id, tasks.length); tasks.push(rowOf(t)); }
    applyHead(s);
    refilter();
    // What arrived meanwhile is replayed in order: the last event of each
    // row wins, as in the journal.
    loading = false;
    for (const [ev, recv] of early.splice(0)) onEvent(ev, recv);
  };
  const eventEl = (ev) => {
    const short = Object.entries(ev).filter(([k]) => !ENVELOPE.has(k))
      .map(([k, v]) => k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v)).join(' ').slice(0, 200);
    return h('li', { 'data-seq': ev.seq }, `#${ev.seq} ${time(ev.at)} ${ev.type} ${ev.actor} ${short}`);
  };
  // The run's earlier events (the last 500), read from the journal stream
  // in windows going back from where the live feed starts: recent history
  // costs a recent window, not the whole journal.
  const history = async (upTo) => {
    const past = [];
    let to = upTo, size = 4096;
    while (to > 1 && past.length < 500) {
      const from = Math.max(1, to - size);
      const r = await fetch('/v1/events?from=' + from, { credentials: 'same-origin', headers: { accept: 'text/event-stream' } });
      if (!r.ok || !r.body) return;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      const win = [];
      let buf = '', last = from - 1;
      while (last < to - 1) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        let i, start = 0;
        while ((i = buf.indexOf('\n\n', start)) >= 0) {
          const block = buf.slice(start, i);
          start = i + 2;
          const at = block.indexOf('data:');
          if (at < 0) continue;
          const nl = block.indexOf('\n', at);
          const data = block.slice(at + 5, nl < 0 ? undefined : nl);
          const m = /"seq":(\d+)/.exec(data);
          if (m) last = Number(m[1]);
          if (last >= to) break;
          // Only this run's events are parsed.
          if (!data.includes('/runs/' + runId) && !data.includes('"run":"' + runId + '"')) continue;
          const ev = JSON.parse(data);
          const a = parseActor(ev.actor);
          if ((a ? a.run : ev.run) === runId) win.push(ev);
        }
        buf = buf.slice(start);
        await breathe();
      }
      reader.cancel().catch(() => {});
      past.unshift(...win);
      to = from;
      size *= 2;
    }
    timeline.prepend(...past.slice(-500).map(eventEl));
    while (timeline.children.length > 500) timeline.firstChild.remove();
    timeline.scrollTop = timeline.scrollHeight;
  };
  load().then(() => tree.refresh()).catch((e) => flash(e.message, true));
  const upTo = feed.next;
  if (upTo > 1) history(upTo).catch(() => {});
  return {
    event: (ev, recv) => {
      const a = parseActor(ev.actor) || (ev.attempt?.run ? { run: ev.attempt.run } : ev.run ? { run: ev.run } : null);
      if (!a || a.run !== runId) return;
      if (loading) early.push([ev, recv]);
      else onEvent(ev, recv);
    },
    paint,
  };
};

// One attempt: its receipt, artifacts, and a bounded live tail of its log.
views.attempt = (main, run, task, nStr) => {
  const n = Number(nStr);
  const facts = h('dl', { id: 'attempt-facts', class: 'cards' });
  const receipt = h('pre', { class: 'log', id: 'receipt' });
  const arts = h('tbody', { id: 'artifacts' });
  const log = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'Log tail' });
  const streamSel = h('select', { id: 'log-stream' }, h('option', { value: 'stdout' }, 'stdout'), h('option', { value: 'stderr' }, 'stderr'));
  const acts = h('div', { class: 'actions', id: 'attempt-actions' });
  main.append(h('h1', {}, 'Attempt ', h('span', { class: 'mono', text: `${task}:${n}` }), ' of ',
    h('a', { href: '#/run/' + enc(run), text: run }), ' ', h('span', { id: 'attempt-result', class: 'st' })),
  acts, facts,
  h('div', { class: 'grid2' },
    h('section', {}, h('h2', { text: 'Receipt' }), receipt, h('h2', { text: 'Artifacts' }),
      h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ...['Kind', 'Path', 'Size', 'MIME', 'sha256'].map((c) => h('th', {}, c)))), arts))),
    h('section', {}, h('h2', {}, 'Log ', streamSel), log)));
  let offset = null, live = false, timer = null, sig = '';
  const MAX = 256 * 1024;
  const tail = coalesce(async () => {
    const from = offset === null ? '' : '&from=' + offset;
    const x = await api(`/v1/fleet/runs/${enc(run)}/tasks/${enc(task)}/logs?attempt=${n}&stream=${streamSel.value}&tail=65536${from}`);
    if (offset === null) log.textContent = x.offset > 0 ? `[${x.offset} earlier bytes not shown]\n` : '';
    if (x.text) {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(x.text);
      if (log.textContent.length > MAX) log.textContent = log.textContent.slice(-MAX);
      if (stick) log.scrollTop = log.scrollHeight;
    }
    offset = x.offset + new TextEncoder().encode(x.text).length;
    if (x.size < offset) offset = x.size;
    live = x.live;
    clearTimeout(timer);
    // Output is not journaled line by line: while the attempt runs, the
    // tail is read again each second (from where it left off).
    if (live) timer = setTimeout(tail, 1000);
  });
  streamSel.addEventListener('change', () => { offset = null; tail(); });
  const refresh = coalesce(async () => {
    const i = await api(`/v1/fleet/runs/${enc(run)}/tasks/${enc(task)}`);
    const a = (i.task.attempts || []).find((x) => x.n === n);
    if (!a) { status(document.getElementById('attempt-result'), 'no such attempt'); return; }
    status(document.getElementById('attempt-result'), a.result || a.phase);
    const f = [['phase', a.phase], ['worker', a.worker], ['host', a.host || i.host], ['pid', a.pid], ['started', time(a.started)],
      ['exit', a.exit_code], ['tokens', a.tokens], ['tool calls', a.tool_calls], ['source', a.source], ['class', a.class], ['usage', money(a.usage)], ['reason', a.reason]];
    patchKeyed(facts, f.filter((x) => x[1] !== undefined && x[1] !== null && x[1] !== ''), (x) => x[0],
      () => h('div', { class: 'card' }, h('span', { class: 'muted' }), h('b')), (el, x) => { setText(el.firstChild, x[0]); setText(el.lastChild, x[1]); });
    setText(receipt, a.receipt ? JSON.stringify(a.receipt, null, 2) : 'no receipt yet');
    patchKeyed(arts, a.receipt?.artifacts || [], (x) => x.kind + x.path, () => h('tr', {}, ...Array.from({ length: 5 }, () => h('td', { class: 'mono' }))),
      (tr, x) => { const c = tr.children; setText(c[0], x.kind); setText(c[1], x.path); setText(c[2], x.size); setText(c[3], x.mime); setText(c[4], (x.sha256 || '').slice(0, 16)); });
    const rc = a.receipt;
    const s = (a.result ? 'e' : 'l') + (rc && rc.result === 'partial' && !rc.verdict ? 'v' : '');
    if (s !== sig) {
      sig = s;
      const kids = [];
      if (!a.result) kids.push(btn('Interrupt', () => actions.attempt('interrupt', run, task, n), 'danger'), btn('Restart', () => actions.attempt('restart', run, task, n)));
      if (s.endsWith('v')) kids.push(btn('Pass', () => actions.verdict(run, task, n, 'pass')), btn('Fail', () => actions.verdict(run, task, n, 'fail'), 'danger'));
      acts.replaceChildren(...kids);
    }
    if (!live && !a.result) tail();
  });
  refresh().then(() => tail()).catch((e) => flash(e.message, true));
  return {
    event: (ev) => {
      const a = parseActor(ev.actor);
      const t = a?.task ?? ev.attempt?.task;
      if (a && a.run === run && (t === undefined || t === task)) refresh();
    },
    unmount: () => clearTimeout(timer),
  };
};

views.alerts = (main) => {
  const summary = h('p', { class: 'muted', id: 'alerts-summary' });
  const tbody = h('tbody', { id: 'alerts' });
  main.append(h('h1', { text: 'Alerts' }), summary, h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ...['Alert', 'Class', 'Run / task', 'Reason', 'State', 'Delivery', 'Raised'].map((c) => h('th', {}, c)))), tbody)));
  const refresh = coalesce(async () => {
    const l = await api('/v1/alerts');
    setText(summary, `${l.alerts.length} alerts · queue ${l.queue} · failed deliveries ${l.failures}` + (l.last_delivery ? ' · last delivery ' + time(l.last_delivery) : ''));
    patchKeyed(tbody, [...l.alerts].reverse(), (e) => e.alert.id, () => h('tr', {}, ...Array.from({ length: 7 }, () => h('td', {}))),
      (tr, e) => {
        const c = tr.children, al = e.alert;
        setText(c[0], al.id); setText(c[1], al.class);
        // {"Run": {"run"}} or {"Agent": {"agent"}}
        const src = al.source || {};
        const from = src.Run ? src.Run.run : src.Agent ? 'agent ' + src.Agent.agent : '';
        setText(c[2], [from, al.task].filter(Boolean).join(' / '));
        setText(c[3], al.reason); status(c[4], e.state);
        c[5].replaceChildren(...(e.deliveries || []).map((d) => h('div', { class: 'delivery' },
          h('span', { class: 'st st-' + (d.outcome || '').replace(/[^a-z_]/gi, '_'), text: d.outcome }),
          ` ${d.adapter} (${d.adapter_kind}) ${d.kind}` + (d.status ? ' HTTP ' + d.status : '') + ` ×${d.attempts}` + (d.error ? ' — ' + d.error : ''))));
        setText(c[6], time(al.raised_at || al.at));
      });
  });
  refresh();
  return { event: (ev) => { if (/^Alert|Notification|Deliver/.test(ev.type) || (ev.actor || '').startsWith('/alert')) refresh(); } };
};

views.agents = (main) => {
  const tbody = h('tbody', { id: 'agents' });
  const empty = h('p', { class: 'muted', hidden: true }, 'No agents. Create one with ', h('code', { text: 'orca agent create' }), '.');
  main.append(h('h1', { text: 'Agents' }), h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ...['Agent', 'State', 'Inbox', 'Approvals', 'Runs', 'Wakes', 'Next timer', 'Last activity'].map((c) => h('th', {}, c)))), tbody)), empty);
  const refresh = coalesce(async () => {
    const l = await api('/v1/agents');
    const list = Array.isArray(l) ? l : l.agents || [];
    empty.hidden = list.length > 0;
    patchKeyed(tbody, list, (a) => a.id, () => h('tr', {}, h('td', {}, h('a', {})), ...Array.from({ length: 7 }, () => h('td', {}))),
      (tr, a) => {
        const c = tr.children;
        c[0].firstChild.href = '#/agent/' + enc(a.id); setText(c[0].firstChild, a.display_name ? `${a.display_name} (${a.id})` : a.id);
        status(c[1], typeof a.lifecycle === 'string' ? a.lifecycle : JSON.stringify(a.lifecycle));
        setText(c[2], a.inbox); setText(c[3], a.approvals); setText(c[4], `${a.runs_running} running / ${a.runs}`);
        setText(c[5], a.wakes); setText(c[6], time(a.next_timer)); setText(c[7], time(a.last_activity));
      });
  });
  refresh();
  return { event: (ev) => { if ((ev.actor || '').startsWith('/agents') || ev.type === 'Agent') refresh(); } };
};

views.agent = (main, id) => {
  const state = h('span', { id: 'agent-state', class: 'st' });
  const sections = {};
  const sec = (key, title) => { sections[key] = h('ul', { id: 'agent-' + key }); return h('section', {}, h('h2', { text: title }), sections[key]); };
  main.append(h('h1', {}, 'Agent ', h('span', { class: 'mono', text: id }), ' ', state),
    h('div', { class: 'actions' },
      btn('Tell', () => actions.agent(id, 'tell')), btn('Pause', () => actions.agent(id, 'pause')), btn('Resume', () => actions.agent(id, 'resume'))),
    h('div', { class: 'grid2' },
      h('div', {}, sec('doing', 'Doing'), sec('blocked', 'Blocked on'), sec('approvals', 'Pending approvals'), sec('watching', 'Watching')),
      h('div', {}, sec('commitments', 'Commitments'), sec('inbox', 'Inbox'), sec('runs', 'Runs running'), sec('notes', 'Notes'))));
  const fill = (key, items, text, extra) => patchKeyed(sections[key], items.length ? items : [null], (x) => x === null ? '-' : text(x),
    (x) => x === null ? h('li', { class: 'muted', text: 'none' }) : h('li', {}, h('span', { text: text(x) }), extra ? extra(x) : null), () => {});
  const refresh = coalesce(async () => {
    const [x, full] = await Promise.all([api(`/v1/agents/${enc(id)}/explain`), api(`/v1/agents/${enc(id)}`)]);
    status(state, typeof x.lifecycle === 'string' ? x.lifecycle : JSON.stringify(x.lifecycle));
    fill('doing', x.doing ? [x.doing] : [], (d) => `wake ${d.wake} from ${d.source} since ${time(d.since)}` + (d.intents?.length ? ' · ' + d.intents.join(', ') : ''));
    fill('blocked', x.blocked_on || [], (b) => b);
    fill('approvals', x.needs_approval || [], (a) => `${a.request}: ${a.what}`,
      (a) => h('span', { class: 'actions' }, btn('Approve', () => actions.agent(id, 'approve', a.request)), btn('Deny', () => actions.agent(id, 'deny', a.request), 'danger')));
    fill('watching', x.watching || [], (w) => `${w.subscription}: ${w.what}` + (w.next ? ' · next ' + time(w.next) : ''));
    fill('commitments', x.commitments || [], (c) => `${c[0]} · due ${time(c[1])} · ${c[2]}`);
    fill('inbox', [...(full.inbox || [])], (i) => `${i.wake} from ${i.source} at ${time(i.at)}`);
    fill('runs', x.runs_running || [], (r) => r);
    fill('notes', [...(x.notes || [])].slice(-20), (n) => `${time(n[0])} ${n[1]}`);
  });
  refresh().catch((e) => flash(e.message, true));
  return { event: (ev) => { if ((ev.actor || '') === '/agents/' + id || (ev.actor || '').startsWith('/agents/' + id + '/') || ev.agent === id) refresh(); } };
};

// ---------------------------------------------------------------- router

let current = null;

function route() {
  const [path] = (location.hash.replace(/^#/, '') || '/runs').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const name = views[parts[0]] ? parts[0] : 'runs';
  if (current?.unmount) current.unmount();
  const main = document.getElementById('view');
  main.replaceChildren();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === name || (name === 'run' && a.dataset.nav === 'runs') || (name === 'agent' && a.dataset.nav === 'agents')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = 'orca · ' + (parts.join(' ') || 'runs');
  current = views[name](main, ...parts.slice(1)) || {};
  current.name = name;
}

window.addEventListener('hashchange', route);
feed.listeners.add((ev, recv) => { if (current?.event) current.event(ev, recv); });
document.getElementById('logout-btn').addEventListener('click', async () => {
  await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-orca-csrf': CSRF } });
  signedOut();
});
// Keyboard: g then r/t/a/n jumps to runs, tree, alerts, agents.
let g = false;
document.addEventListener('keydown', (e) => {
  if (e.target.matches('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (g) {
    const to = { r: 'runs', t: 'tree', a: 'alerts', n: 'agents' }[e.key];
    if (to) location.hash = '#/' + to;
    g = false;
  } else if (e.key === 'g') g = true;
});
startFeed().then(() => {}, () => {});
// The feed's start position is known before the first view asks for history.
journalEnd().then((n) => { if (feed.next <= 1) feed.next = n + 1; }).finally(route);
