// The tidings web app (docs/web.md). The browser is one of the user's devices: it
// signs in through /web/session (the tokens stay in HttpOnly cookies this script never
// sees), follows the push channel from its cursor like the agent does, and changes
// state through the device API; every change, its own included, comes back on the
// channel and is drawn from there. Titles and bodies are only ever set as text.
'use strict';

const PAGE = 50;
const $ = (id) => document.getElementById(id);

const state = {
  me: null,            // {deviceId, deviceName, userName} while signed in
  items: new Map(),    // id -> notification (live ones only)
  cursor: 0,           // the channel's seq: everything up to it is here
  synced: false,       // the backlog is in; what follows is live
  shown: PAGE,         // how many of the filtered list are drawn
  socket: null,
  retries: 0,
  ackTimer: 0,
  drawQueued: false,
  firstPage: false,    // the first page after the backlog is drawn (a performance mark)
  toasts: new Map(),   // id -> the browser Notification shown for it
  keys: new Map(),     // unsid -> this browser's keys for it (sealed.js)
  frames: Promise.resolve(), // the channel's frames, taken one at a time in order
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One request to the service. A 401 while signed in refreshes the session once and
// tries again; if that fails too the browser was signed out (or revoked).
async function api(method, path, body, retried) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !retried && state.me) {
    if (await refresh()) return api(method, path, body, true);
    signedOut('You were signed out. Sign in again.');
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message || message;
    } catch (_) { /* not a Graph error body */ }
    throw new ApiError(response.status, message);
  }
  return response.status === 204 ? null : response.json();
}

async function refresh() {
  const response = await fetch('/web/session/refresh', { method: 'POST', credentials: 'same-origin' });
  return response.ok;
}

// ---- pages ---------------------------------------------------------------------

function show(page) {
  for (const section of document.querySelectorAll('.page')) section.hidden = section.id !== page;
  for (const button of document.querySelectorAll('#nav [data-page]')) {
    if (button.dataset.page === page) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  $('nav').hidden = page === 'signin';
  if (page === 'devices') loadDevices();
  if (page === 'apps') loadApps();
}

function setLink(text) {
  $('link-state').textContent = text;
}

function announce(text) {
  $('announce').textContent = text;
}

async function boot() {
  wire();
  try {
    state.me = await sessionInfo();
  } catch (_) {
    state.me = null;
  }
  if (state.me) await start();
  else signedOut('');
}

async function sessionInfo() {
  const response = await fetch('/web/session', { credentials: 'same-origin' });
  if (response.ok) return response.json();
  if (response.status === 401 && await refresh()) {
    const again = await fetch('/web/session', { credentials: 'same-origin' });
    if (again.ok) return again.json();
  }
  return null;
}

async function start() {
  document.title = `tidings: ${state.me.userName}`;
  setLink('');
  show('inbox');
  await adoptApps();
  connect();
}

// An app's posts reach the user's devices that subscribed to it. So that this browser
// sees every app, it subscribes to each app any of the user's devices subscribed to,
// each time the page opens (which also renews its own subscriptions). Each of its
// subscriptions has keys for end-to-end encrypted content (sealed.js): made for a new
// one, kept for a renewed one, destroyed for one that ended.
async function adoptApps() {
  let own;
  try {
    const { value } = await api('GET', '/v1/me/subscriptions');
    const hosts = new Set(value.map((s) => s.targetHostName));
    own = [];
    for (const host of hosts) {
      const made = await api('POST', '/v1/me/subscriptions', { targetHostName: host });
      own.push({ unsid: made.id, host });
    }
  } catch (error) {
    setLink(`Could not take in your apps: ${error.message}`);
    // The keys kept from before still open what comes (none is made or destroyed).
    state.keys = await Sealed.kept().catch(() => new Map());
    return;
  }
  try {
    state.keys = await Sealed.keep(own);
  } catch (error) {
    setLink(`This browser cannot keep keys, so encrypted notifications stay sealed here: ${error.message}`);
  }
}

function signedOut(message) {
  state.me = null;
  if (state.socket) state.socket.close(1000);
  state.socket = null;
  state.items.clear();
  state.cursor = 0;
  state.synced = false;
  for (const toast of state.toasts.values()) toast.close();
  state.toasts.clear();
  // Signed out or revoked: the keys of its subscriptions go with it.
  state.keys = new Map();
  Sealed.forgetAll().catch(() => {});
  $('list').replaceChildren();
  setLink('');
  $('signin-error').textContent = message;
  document.title = 'tidings';
  show('signin');
}

// ---- the channel ----------------------------------------------------------------

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/v1/me/channel?cursor=${state.cursor}`);
  state.socket = socket;
  setLink('Connecting…');
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    state.frames = state.frames.then(() => received(frame));
  };
  socket.onclose = () => {
    if (state.socket !== socket || !state.me) return;
    state.socket = null;
    state.synced = false;
    setLink('Offline: reconnecting…');
    // Backoff with jitter, at most 30 s, as the agent does.
    const wait = Math.min(30000, 500 * 2 ** state.retries++) * (0.5 + Math.random() / 2);
    setTimeout(reconnect, wait);
  };
}

async function reconnect() {
  if (!state.me) return;
  // The handshake's status is hidden from scripts: check the session first (this
  // refreshes an expired access token, or finds the browser was revoked).
  try {
    await api('GET', '/web/session');
  } catch (_) {
    // Offline: connect anyway, and back off again. Signed out: state.me is gone.
  }
  if (state.me) connect();
}

// A frame, once the one before it is handled: encrypted content is opened first
// (asynchronously), and the order of changes is kept.
async function received(frame) {
  if (frame.type === 'change') changed(frame.seq, await Sealed.open(frame.notification, state.keys));
  else if (frame.type === 'synced') synced(frame.seq);
}

function changed(seq, notification) {
  state.cursor = Math.max(state.cursor, seq);
  const before = state.items.get(notification.id);
  if (notification.status === 'deleted') state.items.delete(notification.id);
  else state.items.set(notification.id, notification);
  if (state.synced) {
    toast(notification, before);
    if (!before && notification.status !== 'deleted') announce(`New: ${title(notification)}`);
  }
  ackSoon();
  draw();
}

function synced(seq) {
  state.cursor = Math.max(state.cursor, seq);
  state.synced = true;
  state.retries = 0;
  setLink('');
  ackSoon();
  draw();
}

// One cumulative ack a moment after a burst of changes.
function ackSoon() {
  if (state.ackTimer) return;
  state.ackTimer = setTimeout(() => {
    state.ackTimer = 0;
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: 'ack', seq: state.cursor }));
    }
  }, 500);
}

// ---- the inbox ------------------------------------------------------------------

const isUnread = (n) => n.readState === 'unread' && n.userActionState !== 'dismissed';
// Encrypted end to end (sealed.js): opened here, for another device, or not opening.
const PLACEHOLDERS = {
  other: '(encrypted for another device)',
  failed: '(encrypted: could not be opened here)',
};
const title = (n) => PLACEHOLDERS[n.sealed]
  || (n.payload && n.payload.visualContent && n.payload.visualContent.title) || '(raw notification)';

function filtered() {
  const unreadOnly = $('show').value === 'unread';
  const app = $('app').value;
  const out = [];
  for (const n of state.items.values()) {
    if (unreadOnly && !isUnread(n)) continue;
    if (app && n.targetHostName !== app) continue;
    out.push(n);
  }
  out.sort((a, b) => (a.createdDateTime < b.createdDateTime ? 1 : a.createdDateTime > b.createdDateTime ? -1 : a.id < b.id ? 1 : -1));
  return out;
}

// Redraws at most once a frame, and not while the backlog is still coming in.
function draw() {
  if (state.drawQueued || !state.synced) return;
  state.drawQueued = true;
  requestAnimationFrame(() => {
    state.drawQueued = false;
    drawNow();
  });
}

function drawNow() {
  const items = filtered();
  const rows = items.slice(0, state.shown).map(row);
  $('list').replaceChildren(...rows);
  // For the browser's performance tools (and benches/web.rs): when the first page
  // of the synced inbox was drawn, in ms since the page began to load.
  if (!state.firstPage) {
    state.firstPage = true;
    performance.mark('tidings:first-page', { detail: { total: state.items.size } });
  }
  $('empty').hidden = items.length > 0;
  $('more').hidden = items.length <= state.shown;
  let unread = 0;
  const apps = new Set();
  for (const n of state.items.values()) {
    if (isUnread(n)) unread += 1;
    apps.add(n.targetHostName);
  }
  $('unread-count').textContent = unread ? String(unread) : '';
  $('unread-count').setAttribute('aria-label', `${unread} unread`);
  drawApps(apps);
}

function drawApps(apps) {
  const select = $('app');
  const chosen = select.value;
  const known = new Set([...select.options].map((o) => o.value));
  for (const app of [...apps].sort()) {
    if (!known.has(app)) select.append(new Option(app, app));
  }
  select.value = chosen;
}

function row(n) {
  const item = document.createElement('li');
  item.className = `item${isUnread(n) ? ' unread' : ''}${n.priority === 'High' ? ' high' : ''}`;
  item.dataset.id = n.id;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const bits = [
    ['app', n.targetHostName === 'localhost' ? 'note to my devices' : n.targetHostName],
    ['time', new Date(n.createdDateTime).toLocaleString()],
    ['state', stateText(n)],
  ];
  if (n.priority === 'High') bits.push(['priority', 'high priority']);
  if (n.priority === 'Low') bits.push(['priority', 'low priority']);
  if (n.sealed === 'opened') bits.push(['sealed', 'encrypted end to end']);
  for (const [name, text] of bits) {
    const span = document.createElement('span');
    span.className = name;
    span.textContent = text;
    meta.append(span);
  }
  const heading = document.createElement('h3');
  heading.className = 'title';
  heading.textContent = title(n);
  item.append(meta, heading);
  const text = n.payload && n.payload.visualContent && n.payload.visualContent.body;
  if (text) {
    const body = document.createElement('p');
    body.className = 'body';
    body.textContent = text;
    item.append(body);
  }
  const actions = document.createElement('div');
  actions.className = 'actions';
  const label = title(n);
  actions.append(
    button('Open', `Open ${label}`, () => openItem(n.id)),
    isUnread(n)
      ? button('Mark read', `Mark ${label} read`, () => patch(n.id, { readState: 'read' }))
      : button('Mark unread', `Mark ${label} unread`, () => patch(n.id, { readState: 'unread', userActionState: 'noInteraction' })),
    button('Dismiss', `Dismiss ${label}`, () => patch(n.id, { userActionState: 'dismissed' })),
    button('Delete', `Delete ${label}`, () => remove(n.id)),
  );
  item.append(actions);
  return item;
}

function stateText(n) {
  if (n.userActionState === 'dismissed') return 'dismissed';
  return n.readState === 'read' ? 'read' : 'unread';
}

function button(text, label, action) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', () => {
    b.disabled = true;
    Promise.resolve(action()).catch((error) => {
      announce(error.message);
      setLink(error.message);
    }).finally(() => { b.disabled = false; });
  });
  return b;
}

function patch(id, body) {
  return api('PATCH', `/v1/me/notifications/${encodeURIComponent(id)}`, body);
}

// Opening is what a click on a toast does: read, and activated.
function openItem(id) {
  return patch(id, { readState: 'read', userActionState: 'activated' });
}

function remove(id) {
  return api('DELETE', `/v1/me/notifications/${encodeURIComponent(id)}`);
}

async function sendNote(event) {
  event.preventDefault();
  const titleText = $('note-title').value.trim();
  const bodyText = $('note-body').value;
  $('note-error').textContent = '';
  if (!titleText) {
    $('note-error').textContent = 'A note needs a title.';
    return;
  }
  const visualContent = bodyText ? { title: titleText, body: bodyText } : { title: titleText };
  try {
    await api('POST', '/v1/me/notifications', { payload: { visualContent } });
    $('note-form').reset();
    announce('Note sent to your devices');
  } catch (error) {
    $('note-error').textContent = error.message;
  }
}

// ---- desktop notifications --------------------------------------------------------

function desktopOn() {
  return 'Notification' in window && Notification.permission === 'granted' && localStorage.getItem('tidings.desktop') === 'on';
}

function drawDesktopToggle() {
  const supported = 'Notification' in window;
  const toggle = $('desktop-toggle');
  toggle.hidden = !supported;
  toggle.textContent = `Desktop notifications: ${desktopOn() ? 'on' : 'off'}`;
  toggle.setAttribute('aria-pressed', String(desktopOn()));
}

// Permission is asked only here, after a click.
async function toggleDesktop() {
  if (desktopOn()) {
    localStorage.setItem('tidings.desktop', 'off');
  } else {
    const permission = await Notification.requestPermission();
    localStorage.setItem('tidings.desktop', permission === 'granted' ? 'on' : 'off');
    if (permission !== 'granted') setLink('The browser does not allow notifications from this page.');
  }
  drawDesktopToggle();
}

// A live notification as a desktop notification while the page is open: new or
// replaced, unread, visual, not in do-not-disturb; closed once handled anywhere.
function toast(n, before) {
  const shown = state.toasts.get(n.id);
  if (n.status === 'deleted' || !isUnread(n)) {
    if (shown) shown.close();
    state.toasts.delete(n.id);
    return;
  }
  if (!desktopOn() || $('dnd').checked || !(n.payload && n.payload.visualContent)) return;
  // New, or replaced with new content; a state change alone shows nothing.
  if (before && JSON.stringify(before.payload) === JSON.stringify(n.payload)) return;
  const options = {
    body: n.payload.visualContent.body || '',
    tag: n.id,
    requireInteraction: n.priority === 'High',
    silent: n.priority === 'Low',
  };
  const shownNow = new Notification(n.payload.visualContent.title, options);
  shownNow.onclick = () => {
    window.focus();
    openItem(n.id).catch(() => {});
  };
  state.toasts.set(n.id, shownNow);
}

// ---- devices and apps -------------------------------------------------------------

async function loadDevices() {
  const list = $('device-list');
  try {
    const { value } = await api('GET', '/v1/me/devices');
    list.replaceChildren(...value.map((d) => {
      const name = d.current ? `${d.name} (this browser)` : d.name;
      const seen = d.connected ? 'connected now' : d.lastSeenDateTime ? `last seen ${new Date(d.lastSeenDateTime).toLocaleString()}` : 'never seen';
      return listRow(name, `${d.platform} · ${seen}`, 'Revoke', `Revoke ${d.name}`, async () => {
        await api('DELETE', `/v1/me/devices/${encodeURIComponent(d.id)}`);
        if (d.current) signedOut('This browser was revoked.');
        else loadDevices();
      });
    }));
  } catch (error) {
    list.replaceChildren(note(error.message));
  }
}

async function loadApps() {
  const list = $('app-list');
  try {
    const { value } = await api('GET', '/v1/me/subscriptions');
    if (!value.length) {
      list.replaceChildren(note('No app has a subscription yet.'));
      return;
    }
    list.replaceChildren(...value.map((s) => listRow(
      s.targetHostName,
      `on ${s.deviceName} · until ${new Date(s.expirationDateTime).toLocaleString()}`,
      'Unsubscribe', `Unsubscribe ${s.targetHostName} on ${s.deviceName}`,
      async () => {
        await api('DELETE', `/v1/me/subscriptions/${encodeURIComponent(s.id)}`);
        loadApps();
      },
      keysOf(s),
    )));
  } catch (error) {
    list.replaceChildren(note(error.message));
  }
}

// For a subscription of this browser: its public keys, in the shape `tidings subscribe
// --json` gives them, to hand to an app's backend so it can encrypt for this browser.
function keysOf(s) {
  const kept = state.me && s.deviceId === state.me.deviceId && state.keys.get(s.id);
  if (!kept) return null;
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  summary.textContent = 'Keys for end-to-end encryption';
  const pre = document.createElement('pre');
  pre.className = 'keys';
  pre.dataset.unsid = s.id;
  const subscription = { unsid: s.id, targetHostName: s.targetHostName, keys: Sealed.publicKeys(kept) };
  pre.textContent = JSON.stringify(subscription, null, 2);
  details.append(summary, pre);
  return details;
}

function note(text) {
  const li = document.createElement('li');
  li.textContent = text;
  return li;
}

// A row with one action that asks to be clicked twice ("… : sure?"), and `extra` (an
// element, or null) under its detail.
function listRow(name, detail, action, label, run, extra) {
  const li = document.createElement('li');
  const what = document.createElement('div');
  what.className = 'what';
  const strong = document.createElement('strong');
  strong.textContent = name;
  const small = document.createElement('small');
  small.textContent = detail;
  what.append(strong, small);
  if (extra) what.append(extra);
  const confirmButton = document.createElement('button');
  confirmButton.type = 'button';
  confirmButton.textContent = action;
  confirmButton.setAttribute('aria-label', label);
  confirmButton.addEventListener('click', () => {
    if (confirmButton.dataset.armed !== 'yes') {
      confirmButton.dataset.armed = 'yes';
      confirmButton.textContent = `${action}: sure?`;
      return;
    }
    confirmButton.disabled = true;
    run().catch((error) => {
      confirmButton.disabled = false;
      setLink(error.message);
    });
  });
  li.append(what, confirmButton);
  return li;
}

// ---- wiring -----------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const error = $('signin-error');
  error.textContent = '';
  const username = $('username').value.trim();
  const password = $('password').value;
  if (!username || !password) {
    error.textContent = 'Enter your user name and password.';
    return;
  }
  try {
    const response = await fetch('/web/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const body = await response.json();
    if (!response.ok) {
      error.textContent = body.error ? body.error.message : `Sign-in failed (${response.status})`;
      return;
    }
    $('password').value = '';
    state.me = body;
    await start();
  } catch (failure) {
    error.textContent = `Cannot reach the service: ${failure.message}`;
  }
}

async function signOut() {
  try {
    await api('DELETE', '/web/session');
  } finally {
    signedOut('Signed out.');
  }
}

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('note-form').addEventListener('submit', sendNote);
  $('sign-out').addEventListener('click', signOut);
  for (const b of document.querySelectorAll('#nav [data-page]')) {
    b.addEventListener('click', () => show(b.dataset.page));
  }
  for (const id of ['show', 'app']) {
    $(id).addEventListener('change', () => {
      state.shown = PAGE;
      draw();
    });
  }
  $('more').addEventListener('click', () => {
    state.shown += PAGE;
    draw();
  });
  $('dnd').checked = localStorage.getItem('tidings.dnd') === 'on';
  $('dnd').addEventListener('change', () => localStorage.setItem('tidings.dnd', $('dnd').checked ? 'on' : 'off'));
  $('desktop-toggle').addEventListener('click', toggleDesktop);
  drawDesktopToggle();
}

boot();
