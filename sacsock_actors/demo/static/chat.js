// The chat page: talks to sacsock_actors/demo/app.py through the sacsock client (/sacsock.js).
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text; // never innerHTML: names and texts are user input
    return node;
  };

  const state = {
    me: { id: null, name: loadName() },
    rooms: [], // [{name, count}] from the server
    joined: new Set(), // rooms we are in; re-joined after a reconnect
    current: null,
    messages: new Map(), // room -> [message]
    unread: new Map(), // room -> count
    members: new Map(), // room -> {version, members}
    connects: 0,
  };

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ss = new SS(scheme + '//' + location.host + '/socket', {
    reconnectOpts: { intervalMS: 500, maxIntervalMS: 10000 },
  });
  window.chat = { ss: ss, state: state }; // handy in the console

  // ---- connection --------------------------------------------------------------------------

  ss.onConnect(function () {
    state.connects++;
    state.members.clear(); // a new server may restart its version counters
    setStatus('open', 'online');
    ss.emit('hello', state.me.name); // the server sent "rooms" already
    state.joined.forEach((room) => ss.emit('join', room));
    if (state.connects > 1) systemLine('reconnected');
  });

  ss.onDisconnect(function () {
    setStatus('reconnecting', 'reconnecting…');
    if (state.current) systemLine('connection lost, reconnecting…');
  });

  ss.on('welcome', function (data) {
    state.me.id = data.id;
    state.me.name = data.name;
    $('name').value = data.name;
    renderRooms(data.rooms);
  });

  ss.on('rooms', renderRooms);

  ss.on('joined', function (data) {
    const first = !state.joined.has(data.room);
    state.joined.add(data.room);
    if (first || !state.current) select(data.room);
    else renderRooms();
  });

  ss.on('left', function (data) {
    state.joined.delete(data.room);
    state.members.delete(data.room);
    if (state.current === data.room) select(state.joined.values().next().value || null);
    else renderRooms();
  });

  ss.on('members', function (data) {
    const known = state.members.get(data.room);
    if (known && known.version > data.version) return; // an older list that arrived late
    state.members.set(data.room, data);
    if (data.room === state.current) renderWho();
  });

  ss.on('message', function (msg) {
    if (!state.messages.has(msg.room)) state.messages.set(msg.room, []);
    state.messages.get(msg.room).push(msg);
    if (msg.room === state.current) appendMessage(msg, true);
    else {
      state.unread.set(msg.room, (state.unread.get(msg.room) || 0) + 1);
      renderRooms();
    }
  });

  ss.on('notice', function (data) {
    toast(data.text);
  });

  // ---- actions -----------------------------------------------------------------------------

  function join(room) {
    room = room.trim();
    if (!room) return;
    if (state.joined.has(room)) select(room);
    else ss.emit('join', room);
  }

  $('room-list').addEventListener('click', function (event) {
    const li = event.target.closest('li[data-room]');
    if (li) join(li.dataset.room);
  });

  $('new-room').addEventListener('submit', function (event) {
    event.preventDefault();
    join($('new-room-name').value);
    $('new-room-name').value = '';
  });

  $('leave').addEventListener('click', function () {
    if (state.current) ss.emit('leave', state.current);
  });

  $('composer').addEventListener('submit', function (event) {
    event.preventDefault();
    const text = $('text').value.trim();
    if (!text || !state.current) return;
    // Sent now, or queued by the client while reconnecting.
    ss.emit('message', { room: state.current, text: text });
    $('text').value = '';
    $('text').focus();
  });

  $('name').value = state.me.name;
  $('name').addEventListener('change', function () {
    const name = $('name').value.trim();
    if (!name) return ($('name').value = state.me.name);
    state.me.name = name;
    saveName(name);
    ss.emit('hello', name);
  });

  // ---- rendering ---------------------------------------------------------------------------

  function select(room) {
    state.current = room;
    if (room) state.unread.delete(room);
    $('room-title').textContent = room ? '# ' + room : 'Pick a room';
    $('leave').hidden = !room;
    $('text').disabled = $('send').disabled = !room;
    $('messages').replaceChildren();
    $('empty').hidden = !!room;
    (state.messages.get(room) || []).forEach((m) => appendMessage(m, false));
    renderRooms();
    renderWho();
    if (room) {
      ss.emit('who', room);
      $('text').focus();
    }
  }

  function renderRooms(list) {
    if (Array.isArray(list)) state.rooms = list;
    const names = state.rooms.map((r) => r.name);
    state.joined.forEach((r) => names.indexOf(r) === -1 && names.push(r));
    const counts = new Map(state.rooms.map((r) => [r.name, r.count]));
    const ul = $('room-list');
    ul.replaceChildren(
      ...names.map(function (name) {
        const li = el('li');
        li.dataset.room = name;
        li.classList.toggle('joined', state.joined.has(name));
        li.classList.toggle('current', state.current === name);
        li.append(el('span', 'room-name', name));
        const unread = state.unread.get(name);
        li.append(el('span', 'badge' + (unread ? ' unread' : ''), String(unread || counts.get(name) || 0)));
        li.lastChild.title = unread ? unread + ' unread' : 'people here';
        const button = el('button', 'join', 'Join');
        button.type = 'button';
        li.append(button);
        return li;
      })
    );
  }

  function renderWho() {
    const ul = $('who');
    const data = state.current && state.members.get(state.current);
    const members = data ? data.members : [];
    $('who-count').textContent = data ? '(' + members.length + ')' : '';
    ul.replaceChildren(
      ...members.map(function (m) {
        const li = el('li');
        li.dataset.id = m.id;
        const avatar = el('span', 'avatar', (m.name[0] || '?').toUpperCase());
        avatar.style.background = colour(m.id);
        li.append(avatar, el('span', 'name', m.name));
        if (m.id === state.me.id) li.append(el('span', 'you', '(you)'));
        return li;
      })
    );
  }

  function appendMessage(msg, scroll) {
    const list = $('messages');
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const li = el('li', 'message' + (msg.id === state.me.id ? ' mine' : ''));
    const meta = el('div', 'meta');
    meta.append(el('b', '', msg.name), el('time', '', clock(msg.ts)));
    li.append(meta, el('div', 'bubble', msg.text));
    list.append(li);
    if (!scroll || stick) list.scrollTop = list.scrollHeight;
  }

  function systemLine(text) {
    if (!state.current) return;
    $('messages').append(el('li', 'message system', text));
  }

  function setStatus(cls, text) {
    $('status').className = 'status ' + cls;
    $('status').textContent = text;
  }

  let toastTimer = null;
  function toast(text) {
    $('toast').textContent = text;
    $('toast').hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => ($('toast').hidden = true), 4000);
  }

  // ---- small things --------------------------------------------------------------------------

  function clock(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function colour(id) {
    let h = 0;
    for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
    return 'hsl(' + (h % 360) + ', 55%, 52%)';
  }

  function loadName() {
    try {
      const saved = localStorage.getItem('sacsock-chat-name');
      if (saved) return saved;
    } catch (e) {}
    return 'guest-' + Math.floor(1000 + Math.random() * 9000);
  }

  function saveName(name) {
    try {
      localStorage.setItem('sacsock-chat-name', name);
    } catch (e) {}
  }

  setInterval(function () {
    // the client's own view, for the states no callback announces (e.g. closed)
    if (ss.state === 'closed') setStatus('closed', 'offline');
  }, 1000);
})();
