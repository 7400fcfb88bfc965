// The page: servers, fetch runs drawn live (chunks, threads blocked, the async loop's wake-ups), in two languages.
import { ApiError, call, streamFetch } from './api.js';
import { Timeline } from './timeline.js';
import { currentLanguage, setLanguage, t, translateStatic } from './i18n.js';

const $ = (selector) => document.querySelector(selector);
const MODES = ['blocking', 'threaded', 'async'];
const SEED = [['ecstasy', 30], ['fascination', 10], ['science', 10]];
const state = { poems: new Map(), servers: [], selected: new Set(), running: false, runs: [], result: null };
const timeline = new Timeline($('#timeline'), (key) => t(key));
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

function showError(error) {
  const item = document.createElement('p');
  item.className = 'error';
  item.textContent = error instanceof ApiError ? error.message : t('unexpected', { message: error.message });
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.textContent = t('dismiss');
  dismiss.addEventListener('click', () => item.remove());
  item.append(' ', dismiss);
  $('#errors').append(item);
}

async function guarded(action) {
  try { return await action(); } catch (error) { showError(error); return undefined; }
}

/// Every control that starts something: off while a run is in flight, so no click is silently dropped.
function setBusy(busy) {
  for (const control of document.querySelectorAll('#race-seed, #seed-delay, #fetch-panel button, #fetch-panel input, #servers-panel button, #servers-panel input, #servers-panel select')) {
    control.disabled = busy;
  }
  $('#fetch-panel').setAttribute('aria-busy', String(busy));
}

// --- poems and servers ---

async function loadPoems() {
  const poems = await call('GET', 'api/poems');
  state.poems = new Map(poems.map((poem) => [poem.name, poem]));
  renderPoems();
}

function renderPoems() {
  const poems = [...state.poems.values()];
  const chosen = $('#poem-select').value;
  $('#poem-select').replaceChildren(...poems.map((poem) => new Option(t('poemOption', { title: poem.title, bytes: poem.bytes }), poem.name)));
  if (chosen) $('#poem-select').value = chosen;
  $('#poem-list').replaceChildren(...poems.map((poem) => {
    const item = document.createElement('li');
    item.textContent = t('poemLine', { name: poem.name, title: poem.title, bytes: poem.bytes });
    return item;
  }));
}

async function loadServers() {
  state.servers = await call('GET', 'api/servers');
  const known = new Set(state.servers.map((server) => server.port));
  for (const port of state.selected) if (!known.has(port)) state.selected.delete(port);
  renderServers();
}

function renderServers() {
  const list = $('#server-list');
  list.replaceChildren(...state.servers.map((server) => {
    const item = document.createElement('li');
    item.textContent = t('serverLine', {
      poem: server.poem, mode: t(server.mode), port: server.port, bytes: server.numBytes, delay: server.delay, clients: server.clients,
    }) + ' ';
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.textContent = t('stop', { poem: server.poem, port: server.port });
    stop.disabled = state.running;
    stop.addEventListener('click', () => guarded(async () => {
      await call('DELETE', `api/servers/${server.id}`);
      await loadServers();
    }));
    item.append(stop);
    return item;
  }));
  if (state.servers.length === 0) {
    const none = document.createElement('li');
    none.textContent = t('noServers');
    list.replaceChildren(none);
  }
  $('#targets').replaceChildren(...state.servers.map((server) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = server.port;
    box.checked = state.selected.has(server.port);
    box.disabled = state.running;
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(server.port); else state.selected.delete(server.port);
    });
    label.append(box, ' ', t('target', { poem: server.poem, port: server.port }));
    return label;
  }));
}

/// The running servers that serve the seed's scenario at `delay`, one per poem, or null for a poem with none.
function seedMatches(delay) {
  const used = new Set();
  return SEED.map(([poem, numBytes]) => {
    const match = state.servers.find((server) => !used.has(server.id) && server.poem === poem && server.mode === 'async'
      && server.numBytes === numBytes && Math.abs(server.delay - delay) < 1e-9);
    if (match) used.add(match.id);
    return match || null;
  });
}

function seedDelay() {
  const delay = Number($('#seed-delay').value);
  return delay > 0 ? delay : 0.1;
}

/// The seed's three servers, reusing running ones with the same poem, mode, bytes and delay; selects exactly them.
async function ensureSeed() {
  const delay = seedDelay();
  await loadServers();
  const matches = seedMatches(delay);
  for (const [index, [poem, numBytes]] of SEED.entries()) {
    if (!matches[index]) matches[index] = await call('POST', 'api/servers', { poem, mode: 'async', numBytes, delay });
  }
  state.selected = new Set(matches.map((server) => server.port));
  await loadServers();
  return matches.map((server) => server.port);
}

$('#server-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  guarded(async () => {
    const server = await call('POST', 'api/servers', {
      poem: form.get('poem'), mode: form.get('mode'),
      numBytes: Number(form.get('numBytes')), delay: Number(form.get('delay')),
    });
    state.selected.add(server.port);
    await loadServers();
  });
});
$('#seed-button').addEventListener('click', () => guarded(ensureSeed));

// --- runs ---

function selectedTargets() {
  return state.servers.filter((server) => state.selected.has(server.port)).map((server) => server.port);
}

function poemBytes(port) {
  const server = state.servers.find((s) => s.port === port);
  return server && state.poems.get(server.poem) ? state.poems.get(server.poem).bytes : 0;
}

const cardTitle = { blocking: 'cardBlocking', threaded: 'cardThreaded', async: 'cardAsync' };

/// A run's card. Its words are drawn from `view` by renderRun, so switching language redraws them.
function makeRunView(mode, ports) {
  const card = document.createElement('article');
  card.className = `run ${mode}`;
  card.dataset.mode = mode;
  const title = document.createElement('h3');
  const total = document.createElement('p');
  total.className = 'total';
  card.append(title, total);
  const view = { mode, card, title, total, totalState: { key: 'runningTotal' }, tasks: [], loop: { wakeups: [], waits: [] } };
  view.tasks = ports.map((port, index) => {
    const row = document.createElement('div');
    row.className = 'task';
    row.dataset.state = 'waiting';
    const label = document.createElement('label');
    const progress = document.createElement('progress');
    progress.max = poemBytes(port) || 1;
    progress.value = 0;
    progress.id = `${mode}-task-${index + 1}`;
    label.htmlFor = progress.id;
    const server = state.servers.find((s) => s.port === port);
    const status = document.createElement('span');
    status.className = 'status';
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    const poem = document.createElement('pre');
    poem.className = 'poem';
    details.append(summary, poem);
    row.append(label, progress, status, details);
    card.append(row);
    return { n: index + 1, name: server ? server.poem : String(port), row, label, progress, status, summary, poem,
      received: 0, statusState: { key: 'waiting' }, started: null, ended: null, blocked: 0 };
  });
  $('#runs').append(card);
  renderRun(view);
  return view;
}

function renderRun(view) {
  view.title.textContent = t(cardTitle[view.mode]);
  view.total.textContent = t(view.totalState.key, view.totalState.params);
  for (const task of view.tasks) {
    task.label.textContent = t('taskLabel', { n: task.n, poem: task.name });
    task.status.textContent = t(task.statusState.key, task.statusState.params);
    task.summary.textContent = t('showPoem');
  }
}

/// What the run's own measurements say about how it waited (the page's headline numbers).
function loopNumbers(view) {
  if (view.elapsed === undefined) return null;
  const elapsed = view.elapsed;
  if (view.mode === 'async') {
    const slept = view.loop.wakeups.reduce((sum, w) => sum + w.slept, 0);
    return { key: 'loopAsync', wakeups: view.loop.wakeups.length, slept, elapsed,
      params: { wakeups: view.loop.wakeups.length, pct: percent(slept, elapsed), elapsed: elapsed.toFixed(1) } };
  }
  const blocked = view.tasks.reduce((sum, task) => sum + task.blocked, 0);
  if (view.mode === 'blocking') {
    return { key: 'loopBlocking', blocked, elapsed, params: { pct: percent(blocked, elapsed), elapsed: elapsed.toFixed(1) } };
  }
  const lived = view.tasks.reduce((sum, task) => sum + Math.max(0, (task.ended ?? elapsed) - (task.started ?? 0)), 0);
  return { key: 'loopThreaded', blocked, elapsed,
    params: { threads: view.tasks.length, pct: percent(blocked, lived), elapsed: elapsed.toFixed(1) } };
}

function percent(part, whole) {
  return whole > 0 ? Math.min(100, (100 * part) / whole).toFixed(0) : '0';
}

function renderLoopNumbers() {
  $('#loop-numbers').replaceChildren(...state.runs.map((view) => {
    const numbers = loopNumbers(view);
    if (!numbers) return null;
    const item = document.createElement('li');
    item.className = `loop ${view.mode}`;
    item.dataset.mode = view.mode;
    if (numbers.wakeups !== undefined) item.dataset.wakeups = String(numbers.wakeups);
    item.textContent = t(numbers.key, numbers.params);
    return item;
  }).filter(Boolean));
}

function setStatus(task, key, params) {
  task.statusState = { key, params };
  task.status.textContent = t(key, params);
}

/// The progress line (announced through aria-live), kept as a function so a language switch can redo it.
function setProgress(words) {
  state.progress = words;
  $('#progress').textContent = words();
}

function announce(modes) {
  setProgress(() => progressText(modes));
}

function progressText(modes) {
  const parts = state.runs.map((view) => t('progressPart', {
    mode: t(view.mode), done: view.tasks.filter((task) => task.row.dataset.state === 'done' || task.row.dataset.state === 'failed').length,
    total: view.tasks.length,
  }));
  return parts.length ? t('progressUpdate', { parts: parts.join(' · ') }) : t('progressStart', { modes: modes.map((m) => t(m)).join(', ') });
}

async function runOne(view, ports, modes) {
  const { mode } = view;
  const started = performance.now();
  const onEvent = (event) => {
    const task = event.task ? view.tasks[event.task - 1] : null;
    switch (event.event) {
      case 'connecting':
        task.started = event.t;
        setStatus(task, 'connecting');
        task.row.dataset.state = 'connecting';
        break;
      case 'connected': setStatus(task, 'connected'); task.row.dataset.state = 'receiving'; break;
      case 'data':
        task.progress.value = event.received;
        task.received = event.received;
        setStatus(task, 'progressBytes', { received: event.received, total: task.progress.max });
        timeline.add(`${mode}-${event.task}`, event.t, event.bytes);
        break;
      case 'blocked':
        task.blocked += event.seconds;
        timeline.addWait(`${mode}-${event.task}`, event.t, event.seconds);
        break;
      case 'wakeup':
        view.loop.wakeups.push(event);
        timeline.addWake(`${mode}-loop`, event.t, event.ready, event.bytes);
        break;
      case 'done':
        task.ended = event.t;
        task.progress.value = event.bytes;
        setStatus(task, 'finished', { bytes: event.bytes, t: event.t.toFixed(2) });
        task.row.dataset.state = 'done';
        task.poem.textContent = event.poem;
        announce(modes);
        break;
      case 'failed':
        // A task that had begun receiving lost the rest of its poem (its server stopped, or a limit ended it).
        task.ended = event.t;
        setStatus(task, task.received > 0 ? 'cutShort' : 'failed', { message: event.message });
        task.row.dataset.state = 'failed';
        announce(modes);
        break;
      case 'summary':
        view.elapsed = event.elapsed;
        view.totalState = event.failed
          ? { key: 'totalFailed', params: { poems: event.poems, elapsed: event.elapsed.toFixed(2), failed: event.failed } }
          : { key: 'total', params: { poems: event.poems, elapsed: event.elapsed.toFixed(2) } };
        view.total.textContent = t(view.totalState.key, view.totalState.params);
        renderLoopNumbers();
        break;
      default: break;
    }
  };
  try {
    const summary = await streamFetch(mode, ports, onEvent);
    return { mode, elapsed: summary.elapsed };
  } catch (error) {
    view.totalState = { key: 'broken', params: { message: error.message } };
    view.total.textContent = t('broken', { message: error.message });
    view.card.dataset.state = 'broken';
    throw error;
  } finally {
    view.card.dataset.wallSeconds = ((performance.now() - started) / 1000).toFixed(2);
  }
}

function renderResult() {
  const result = $('#result');
  if (!state.result) { result.textContent = ''; return; }
  const totals = state.result;
  const parts = MODES.filter((mode) => mode in totals).map((mode) => t('resultPart', { mode: t(mode), elapsed: totals[mode].toFixed(2) }));
  result.textContent = parts.join(' · ');
  if (totals.blocking && totals.async) {
    const speedup = document.createElement('strong');
    speedup.id = 'speedup';
    speedup.textContent = t('speedup', { x: (totals.blocking / totals.async).toFixed(2) });
    result.append(' · ', speedup);
  }
}

async function run(modes, ports = selectedTargets()) {
  if (state.running) return;
  $('#errors').replaceChildren();
  if (ports.length === 0) {
    showError(new ApiError(t('chooseServer')));
    return;
  }
  state.running = true;
  setBusy(true);
  document.body.dataset.running = 'true';
  document.body.dataset.finished = 'false';
  $('#runs').replaceChildren();
  $('#loop-numbers').replaceChildren();
  state.result = null;
  renderResult();
  timeline.reset(modes.flatMap((mode) => [
    ...ports.map((port, index) => ({ key: `${mode}-${index + 1}`, run: mode, task: index + 1 })),
    ...(mode === 'async' ? [{ key: 'async-loop', run: 'async', loop: true }] : []),
  ]));
  state.runs = modes.map((mode) => makeRunView(mode, ports));
  announce(modes);
  // The race is what the reader came for: bring it into view (at once when motion is unwelcome).
  $('#race-view').scrollIntoView({ block: 'start', behavior: reducedMotion.matches ? 'auto' : 'smooth' });
  const watcher = watchReactor();
  try {
    const results = await Promise.allSettled(state.runs.map((view) => runOne(view, ports, modes)));
    state.result = Object.fromEntries(results.filter((r) => r.status === 'fulfilled').map((r) => [r.value.mode, r.value.elapsed]));
    for (const r of results) if (r.status === 'rejected') showError(r.reason);
    renderResult();
    setProgress(() => t('progressDone', { result: $('#result').textContent }));
  } finally {
    await watcher.stop();
    state.running = false;
    setBusy(false);
    document.body.dataset.running = 'false';
    document.body.dataset.finished = 'true';
    guarded(loadServers);
  }
}

async function raceSeed(modes = MODES) {
  if (state.running) return;
  $('#errors').replaceChildren();
  const ports = await guarded(ensureSeed);
  if (ports) await run(modes, ports);
}

$('#race-seed').addEventListener('click', () => raceSeed());
$('#run-blocking').addEventListener('click', () => run(['blocking']));
$('#run-threaded').addEventListener('click', () => run(['threaded']));
$('#run-async').addEventListener('click', () => run(['async']));
$('#run-all').addEventListener('click', () => run(MODES));

// --- the gateway's own loop ---

function watchReactor() {
  let first = null;
  let timer = null;
  const update = async () => {
    const stats = await call('GET', 'api/reactor').catch(() => null);
    if (!stats) return;
    if (!first) first = stats;
    const blocked = stats.blockedSeconds - first.blockedSeconds;
    const busy = stats.busySeconds - first.busySeconds;
    const share = blocked + busy > 0 ? (100 * blocked) / (blocked + busy) : 100;
    // One figure per gateway: with several reactor threads the counts are their sums, and the backend says how many.
    $('#reactor-backend').textContent = stats.threads > 1 ? `${stats.backend} × ${stats.threads}` : stats.backend;
    $('#reactor-wakeups').textContent = String(stats.iterations - first.iterations);
    $('#reactor-blocked').textContent = `${blocked.toFixed(3)} s (${share.toFixed(1)} %)`;
    $('#reactor-busy').textContent = `${busy.toFixed(3)} s (${(100 - share).toFixed(1)} %)`;
    $('#split').dataset.measured = 'true';
    $('#blocked-bar').style.width = `${share}%`;
  };
  update();
  timer = setInterval(update, 300);
  return { stop: async () => { clearInterval(timer); await update(); } };
}

// --- language ---

function renderLanguage() {
  translateStatic();
  renderPoems();
  renderServers();
  for (const view of state.runs) renderRun(view);
  renderLoopNumbers();
  renderResult();
  if (state.progress) $('#progress').textContent = state.progress();
  timeline.draw();
}

$('#lang-toggle').addEventListener('click', () => {
  setLanguage(currentLanguage() === 'zh' ? 'en' : 'zh');
  renderLanguage();
});

// --- start-up and shareable scenarios ---

const linkModes = { blocking: ['blocking'], threaded: ['threaded'], async: ['async'], both: ['blocking', 'async'], all: MODES };

async function start() {
  translateStatic();
  await guarded(async () => { await loadPoems(); await loadServers(); });
  const params = new URLSearchParams(location.search);
  if (params.get('scenario') === 'seed') {
    const delay = Number(params.get('delay'));
    if (delay > 0) $('#seed-delay').value = String(delay);
    const mode = params.get('mode') || 'all';
    if (!linkModes[mode]) showError(new ApiError(t('badLinkMode', { mode })));
    else await raceSeed(linkModes[mode]);
    return;
  }
  // A first visit (say to `poetry gateway --demo`) finds servers ready: select the seed's, or else all of them,
  // so the first press of a Run button fetches something.
  if (state.selected.size === 0 && state.servers.length > 0) {
    const ecstasy = state.servers.find((server) => server.poem === 'ecstasy' && server.mode === 'async' && server.numBytes === 30);
    const seed = ecstasy ? seedMatches(ecstasy.delay) : [];
    const chosen = seed.length && seed.every(Boolean) ? seed : state.servers;
    if (chosen === seed) $('#seed-delay').value = String(ecstasy.delay);
    state.selected = new Set(chosen.map((server) => server.port));
    renderServers();
  }
}
start();
