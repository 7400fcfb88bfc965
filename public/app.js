// The page: servers, fetch runs drawn live, and the reactor's own view of them.
import { ApiError, call, streamFetch } from './api.js';
import { Timeline } from './timeline.js';

const $ = (selector) => document.querySelector(selector);
const state = { poems: new Map(), servers: [], selected: new Set(), running: false };
const timeline = new Timeline($('#timeline'));

function showError(error) {
  const item = document.createElement('p');
  item.className = 'error';
  item.textContent = error instanceof ApiError ? error.message : `Unexpected error: ${error.message}`;
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.textContent = 'Dismiss';
  dismiss.addEventListener('click', () => item.remove());
  item.append(' ', dismiss);
  $('#errors').append(item);
}

async function guarded(action) {
  try { return await action(); } catch (error) { showError(error); return undefined; }
}

// --- poems and servers ---

async function loadPoems() {
  const poems = await call('GET', 'api/poems');
  state.poems = new Map(poems.map((poem) => [poem.name, poem]));
  $('#poem-select').replaceChildren(...poems.map((poem) => new Option(`${poem.title} (${poem.bytes} bytes)`, poem.name)));
  $('#poem-list').replaceChildren(...poems.map((poem) => {
    const item = document.createElement('li');
    item.textContent = `${poem.name}: ${poem.title}, ${poem.bytes} bytes`;
    return item;
  }));
}

async function loadServers() {
  state.servers = await call('GET', 'api/servers');
  const known = new Set(state.servers.map((server) => server.port));
  for (const port of state.selected) if (!known.has(port)) state.selected.delete(port);
  renderServers();
}

function describe(server) {
  return `${server.poem} · ${server.mode} · port ${server.port} · ${server.numBytes} B every ${server.delay} s · ${server.clients} served`;
}

function renderServers() {
  $('#server-list').replaceChildren(...state.servers.map((server) => {
    const item = document.createElement('li');
    item.textContent = describe(server) + ' ';
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.textContent = `Stop ${server.poem} on ${server.port}`;
    stop.addEventListener('click', () => guarded(async () => {
      await call('DELETE', `api/servers/${server.id}`);
      await loadServers();
    }));
    item.append(stop);
    return item;
  }));
  if (state.servers.length === 0) $('#server-list').innerHTML = '<li>None yet.</li>';
  $('#targets').replaceChildren(...state.servers.map((server) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = server.port;
    box.checked = state.selected.has(server.port);
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(server.port); else state.selected.delete(server.port);
    });
    label.append(box, ` ${server.poem} (${server.port})`);
    return label;
  }));
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

async function setUpSeed() {
  const delay = Number($('#seed-delay').value) || 0.1;
  state.selected.clear();
  for (const [poem, numBytes] of [['ecstasy', 30], ['fascination', 10], ['science', 10]]) {
    const server = await call('POST', 'api/servers', { poem, mode: 'async', numBytes, delay });
    state.selected.add(server.port);
  }
  await loadServers();
}
$('#seed-button').addEventListener('click', () => guarded(setUpSeed));

// --- runs ---

function selectedTargets() {
  return state.servers.filter((server) => state.selected.has(server.port)).map((server) => server.port);
}

function poemBytes(port) {
  const server = state.servers.find((s) => s.port === port);
  return server && state.poems.get(server.poem) ? state.poems.get(server.poem).bytes : 0;
}

function makeRunView(mode, ports) {
  const card = document.createElement('article');
  card.className = `run ${mode}`;
  card.dataset.mode = mode;
  const title = document.createElement('h3');
  title.textContent = mode === 'blocking' ? 'Blocking: one after another' : 'Async: all at once';
  const total = document.createElement('p');
  total.className = 'total';
  total.textContent = 'running…';
  card.append(title, total);
  const tasks = ports.map((port, index) => {
    const row = document.createElement('div');
    row.className = 'task';
    row.dataset.state = 'waiting';
    const label = document.createElement('label');
    const progress = document.createElement('progress');
    progress.max = poemBytes(port) || 1;
    progress.value = 0;
    const id = `${mode}-task-${index + 1}`;
    progress.id = id;
    label.htmlFor = id;
    const server = state.servers.find((s) => s.port === port);
    label.textContent = `Task ${index + 1}: ${server ? server.poem : port}`;
    const status = document.createElement('span');
    status.className = 'status';
    status.textContent = 'waiting';
    const poem = document.createElement('pre');
    poem.className = 'poem';
    row.append(label, progress, status, poem);
    card.append(row);
    return { row, progress, status, poem, decoder: new TextDecoder() };
  });
  $('#runs').append(card);
  return { card, total, tasks };
}

async function runOne(mode, ports) {
  const view = makeRunView(mode, ports);
  const started = performance.now();
  const onEvent = (event) => {
    const task = event.task ? view.tasks[event.task - 1] : null;
    switch (event.event) {
      case 'connecting': task.status.textContent = 'connecting'; task.row.dataset.state = 'connecting'; break;
      case 'connected': task.status.textContent = 'connected'; task.row.dataset.state = 'receiving'; break;
      case 'data':
        task.progress.value = event.received;
        task.received = event.received;
        task.status.textContent = `${event.received} / ${task.progress.max} bytes`;
        timeline.add(`${mode}-${event.task}`, event.t, event.bytes);
        break;
      case 'done':
        task.progress.value = event.bytes;
        task.status.textContent = `finished: ${event.bytes} bytes at ${event.t.toFixed(2)} s`;
        task.row.dataset.state = 'done';
        task.poem.textContent = event.poem;
        break;
      case 'failed':
        // A task that had begun receiving lost the rest of its poem (its server stopped, or a limit ended it).
        task.status.textContent = `${task.received > 0 ? 'cut short' : 'failed'}: ${event.message}`;
        task.row.dataset.state = 'failed';
        break;
      case 'summary':
        view.total.textContent = `${event.poems} poems in ${event.elapsed.toFixed(2)} s` + (event.failed ? `, ${event.failed} failed` : '');
        break;
      default: break;
    }
  };
  try {
    const summary = await streamFetch(mode, ports, onEvent);
    return { mode, elapsed: summary.elapsed };
  } catch (error) {
    view.total.textContent = `broken: ${error.message}`;
    view.card.dataset.state = 'broken';
    throw error;
  } finally {
    view.card.dataset.wallSeconds = ((performance.now() - started) / 1000).toFixed(2);
  }
}

async function run(modes) {
  if (state.running) return;
  const ports = selectedTargets();
  if (ports.length === 0) {
    showError(new ApiError('Choose at least one server to fetch from (or set up the seed scenario).'));
    return;
  }
  state.running = true;
  document.body.dataset.running = 'true';
  $('#runs').replaceChildren();
  $('#result').textContent = '';
  timeline.reset(modes.flatMap((mode) => ports.map((port, index) => ({
    key: `${mode}-${index + 1}`, run: mode, label: `${mode} · task ${index + 1}`,
  }))));
  const watcher = watchReactor();
  try {
    const results = await Promise.allSettled(modes.map((mode) => runOne(mode, ports)));
    const totals = Object.fromEntries(results.filter((r) => r.status === 'fulfilled').map((r) => [r.value.mode, r.value.elapsed]));
    for (const r of results) if (r.status === 'rejected') showError(r.reason);
    const parts = Object.entries(totals).map(([mode, elapsed]) => `${mode}: ${elapsed.toFixed(2)} s`);
    $('#result').textContent = parts.join(' · ');
    if (totals.blocking && totals.async) {
      const speedup = document.createElement('strong');
      speedup.id = 'speedup';
      speedup.textContent = `speedup ${(totals.blocking / totals.async).toFixed(2)}×`;
      $('#result').append(' · ', speedup);
    }
  } finally {
    await watcher.stop();
    state.running = false;
    document.body.dataset.running = 'false';
    document.body.dataset.finished = 'true';
    guarded(loadServers);
  }
}

$('#run-blocking').addEventListener('click', () => run(['blocking']));
$('#run-async').addEventListener('click', () => run(['async']));
$('#run-both').addEventListener('click', () => run(['blocking', 'async']));

// --- the reactor's view ---

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
    $('#reactor-backend').textContent = stats.backend;
    $('#reactor-wakeups').textContent = String(stats.iterations - first.iterations);
    $('#reactor-blocked').textContent = `${blocked.toFixed(3)} s (${share.toFixed(1)} %)`;
    $('#reactor-busy').textContent = `${busy.toFixed(3)} s (${(100 - share).toFixed(1)} %)`;
    $('#blocked-bar').style.width = `${share}%`;
  };
  update();
  timer = setInterval(update, 300);
  return { stop: async () => { clearInterval(timer); await update(); } };
}

// --- start-up and shareable scenarios ---

async function start() {
  await guarded(async () => { await loadPoems(); await loadServers(); });
  const params = new URLSearchParams(location.search);
  if (params.get('scenario') === 'seed') {
    const delay = Number(params.get('delay'));
    if (delay > 0) $('#seed-delay').value = String(delay);
    await guarded(setUpSeed);
    const mode = params.get('mode') || 'both';
    const button = { blocking: '#run-blocking', async: '#run-async', both: '#run-both' }[mode];
    if (!button) showError(new ApiError(`Unknown mode '${mode}' in the link: use blocking, async or both.`));
    else $(button).click();
  }
}
start();
