// In-page helpers for the end-to-end tests: named clients whose received events are
// recorded in an inbox, and a promise-returning take() to wait for the next one.
(function () {
  'use strict';

  function describe(data) {
    if (data instanceof ArrayBuffer) {
      return { kind: 'arraybuffer', hex: Array.from(new Uint8Array(data), (b) => b.toString(16).padStart(2, '0')).join('') };
    }
    return { kind: typeof data, value: data };
  }

  const clients = {};

  const T = {
    clients: clients,

    /** Create client `name`; its events in `events` are recorded. Returns nothing (for evaluate). */
    connect: function (name, events, opts) {
      const ss = new SS('ws://' + location.host + '/socket', opts || {});
      const rec = { ss: ss, inbox: [], waiters: [], connects: 0, disconnects: [], counts: {} };
      clients[name] = rec;
      ss.onConnect(function () {
        rec.connects++;
      });
      ss.onDisconnect(function (event) {
        rec.disconnects.push(event.code);
      });
      (events || []).forEach(function (event) {
        T.listen(name, event);
      });
    },

    listen: function (name, event) {
      const rec = clients[name];
      rec.ss.on(event, function (data) {
        rec.counts[event] = (rec.counts[event] || 0) + 1;
        const item = Object.assign({ event: event, self: this === rec.ss }, describe(data));
        const i = rec.waiters.findIndex(function (w) {
          return w.event === event;
        });
        if (i !== -1) rec.waiters.splice(i, 1)[0].resolve(item);
        else rec.inbox.push(item);
      });
    },

    /** The next `event` received by client `name` (already received, or within timeoutMs). */
    take: function (name, event, timeoutMs) {
      const rec = clients[name];
      const i = rec.inbox.findIndex(function (m) {
        return m.event === event;
      });
      if (i !== -1) return Promise.resolve(rec.inbox.splice(i, 1)[0]);
      return new Promise(function (resolve, reject) {
        const waiter = { event: event, resolve: resolve };
        rec.waiters.push(waiter);
        setTimeout(function () {
          const at = rec.waiters.indexOf(waiter);
          if (at === -1) return;
          rec.waiters.splice(at, 1);
          reject(new Error(name + ': no "' + event + '" within ' + timeoutMs + ' ms (state ' + rec.ss.state + ')'));
        }, timeoutMs);
      });
    },

    /** Events received but not taken yet, by name. */
    pending: function (name) {
      return clients[name].inbox.map(function (m) {
        return m.event;
      });
    },
  };

  window.T = T;
})();
