// The multihome page: talks to examples/multihome/app.py through /sacsock.js.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  let room = 'lobby';

  function line(text, cls, meta) {
    const div = document.createElement('div');
    if (cls) div.className = cls;
    if (meta) {
      const m = document.createElement('span');
      m.className = 'meta';
      m.textContent = meta + ' ';
      div.appendChild(m);
    }
    div.appendChild(document.createTextNode(text)); // user input: never innerHTML
    $('log').appendChild(div);
    $('log').scrollTop = $('log').scrollHeight;
  }
  const who = (m) => m.from.slice(0, 6) + '@' + m.instance;

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ss = new SS(scheme + '//' + location.host + '/socket');

  ss.onConnect(() => ss.emit('join', room));
  ss.onDisconnect(() => line('disconnected, reconnecting…', 'sys'));
  ss.on('hello', (h) => { $('me').textContent = h.id.slice(0, 6); $('instance').textContent = h.instance; });
  ss.on('joined', (r) => { room = r; $('room').textContent = r; line('joined ' + r, 'sys'); });
  ss.on('left', (r) => line('left ' + r, 'sys'));
  ss.on('message', (m) => line(m.text, '', '[' + m.room + '] ' + who(m)));
  ss.on('announcement', (m) => line(m.text, 'sys', '[all] ' + who(m)));
  ss.on('dm', (m) => line(m.text, 'sys', '[dm] ' + who(m)));

  function onSubmit(form, input, send) {
    $(form).addEventListener('submit', (e) => {
      e.preventDefault();
      const text = $(input).value.trim();
      if (text) send(text);
      $(input).value = '';
    });
  }
  onSubmit('say', 'text', (t) => ss.emit('message', { room: room, text: t }));
  onSubmit('shout', 'atext', (t) => ss.emit('announce', t));
  onSubmit('switch', 'newroom', (r) => { ss.emit('leave', room); ss.emit('join', r); });
})();
