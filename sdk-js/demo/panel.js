// The demo shop's "Cartwatch live" panel, on every page:
//  (a) what the tracker sent: it wraps window.fetch and navigator.sendBeacon before the
//      tracker loads (this script comes first in <head>) and records each POST .../v1/batch,
//      its messages and the collector's answer. The record lives in sessionStorage, so the
//      beacons a page sends as it goes away show on the next page.
//  (b) what Cartwatch knows about this visitor now: GET /api/visitors/{anonymousId} and,
//      once signed in, /api/customers/{userId}, through the demo server's proxy of the
//      query API (serve.mjs; the secret key stays there). Refreshed when the page opens,
//      after every answered batch, every few seconds, and with the Refresh button.
// A demo's instrument only: a real shop has no need to wrap fetch.
(function () {
  var LOG = 'demo_panel_log';
  var MAX_ENTRIES = 40;
  var POLL_MS = 4000;
  var entries = [];
  try {
    entries = JSON.parse(sessionStorage.getItem(LOG) || '[]');
  } catch (e) {}
  var nextId = entries.reduce(function (n, e) { return Math.max(n, e.id + 1); }, 1);

  function save() {
    entries = entries.slice(-MAX_ENTRIES);
    try {
      sessionStorage.setItem(LOG, JSON.stringify(entries));
    } catch (e) {}
  }

  var isBatch = function (url) { return /\/v1\/batch(\?|$)/.test(String(url || '')); };

  // An entry for one request: when, how, and its messages.
  function record(via, url, body) {
    var messages = [];
    try {
      messages = JSON.parse(String(body)).batch || [];
    } catch (e) {}
    var entry = { id: nextId++, at: new Date().toISOString(), via: via, url: String(url), status: via === 'beacon' ? 'beacon' : 'pending', messages: messages };
    entries.push(entry);
    save();
    renderSent();
    return entry;
  }
  function answered(entry, status) {
    entry.status = status;
    save();
    renderSent();
    if (typeof status === 'number' && status < 300) refreshSoon();
  }

  var realFetch = window.fetch;
  if (realFetch) {
    window.fetch = function (input, init) {
      var url = typeof input === 'string' ? input : input && input.url;
      var answer = realFetch.apply(window, arguments);
      try {
        if (isBatch(url)) {
          var entry = record('fetch', url, init && init.body);
          answer.then(function (res) { answered(entry, res.status); }, function () { answered(entry, 'network error'); });
        }
      } catch (e) {}
      return answer;
    };
  }
  var realBeacon = navigator.sendBeacon;
  if (realBeacon) {
    navigator.sendBeacon = function (url, data) {
      var ok = realBeacon.apply(navigator, arguments);
      try {
        if (isBatch(url)) {
          var entry = record('beacon', url, data);
          if (!ok) answered(entry, 'refused by the browser');
        }
      } catch (e) {}
      return ok;
    };
  }

  // ---- rendering ----
  var $ = function (id) { return document.getElementById(id); };
  var esc = function (s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  };
  var time = function (iso) { return iso ? new Date(iso).toLocaleTimeString() : ''; };
  var amount = function (v, currency) {
    if (v == null) return 'n/a';
    try {
      return new Intl.NumberFormat('en-IE', { style: 'currency', currency: currency || 'EUR' }).format(v);
    } catch (e) {
      return v + ' ' + (currency || '');
    }
  };
  var label = function (m) {
    return m.type === 'track' ? m.event : m.type === 'page' ? 'page ' + (m.name || '') : m.type;
  };

  function renderSent() {
    var list = $('cw-sent');
    if (!list) return;
    var before = {};
    var html = entries.map(function (e) {
      var status = e.status === 'beacon' ? 'beacon (no answer)' : typeof e.status === 'number' ? 'HTTP ' + e.status : e.status;
      var cls = e.status === 'beacon' ? 'beacon' : e.status === 'pending' ? 'pending' : typeof e.status === 'number' && e.status < 300 ? 'ok' : 'failed';
      var msgs = e.messages.map(function (m) {
        var again = before[m.messageId] ? ' <span class="again">again (Cartwatch keeps it once)</span>' : '';
        before[m.messageId] = true;
        return '<details class="msg" data-label="' + esc(label(m)) + '"><summary>' + esc(label(m)) + again +
          (m.userId ? ' <span class="tag">' + esc(m.userId) + '</span>' : '') + '</summary><pre>' +
          esc(JSON.stringify(m, null, 2)) + '</pre></details>';
      }).join('');
      return '<li class="' + cls + '"><div class="req">' + time(e.at) + ' &middot; ' + esc(e.via) + ' &middot; ' + esc(status) +
        ' &middot; ' + e.messages.length + ' message' + (e.messages.length === 1 ? '' : 's') + '</div>' + msgs + '</li>';
    });
    list.innerHTML = html.reverse().join('') || '<li class="state">Nothing sent yet.</li>';
  }

  function dl(rows) {
    return '<dl>' + rows.map(function (r) { return '<dt>' + esc(r[0]) + '</dt><dd>' + r[1] + '</dd>'; }).join('') + '</dl>';
  }
  function cartRows(cart) {
    if (!cart || !cart.lines || !cart.lines.length) return [['cart', 'empty']];
    return [['cart', esc(cart.items + ' item' + (cart.items === 1 ? '' : 's') + ', ' + amount(cart.value, cart.currency) + ' (' + cart.stage + ')')],
      ['lines', cart.lines.map(function (l) { return esc(l.quantity + ' x ' + (l.name || l.product_id)); }).join('<br>')]];
  }
  function show(box, state, note, summary, doc) {
    box.dataset.state = state;
    box.querySelector('.state').textContent = note;
    box.querySelector('.summary').innerHTML = summary;
    box.querySelector('pre').textContent = doc ? JSON.stringify(doc, null, 2) : '';
    box.querySelector('details').hidden = !doc;
  }

  function renderVisitor(aid, answer) {
    var box = $('cw-visitor');
    if (!box) return;
    if (!answer) return show(box, 'waiting', 'Waiting for the tracker to load...', '', null);
    if (answer.status === 404) return show(box, 'unknown', 'Not known yet: no message of this visitor has arrived.', dl([['anonymousId', '<span class="ids">' + esc(aid) + '</span>']]), null);
    if (answer.status !== 200) return show(box, 'error', errorText(answer), '', answer.doc);
    var v = answer.doc;
    var s = (v.sessions || [])[0];
    show(box, 'known', '', dl([
      ['anonymousId', '<span class="ids">' + esc(v.anonymous_id) + '</span>'],
      ['customer', v.user_id ? '<span class="ids">' + esc(v.user_id) + '</span>' : 'anonymous'],
      ['page views', esc(v.page_views)],
      ['sessions', esc((v.sessions || []).length + (s ? ' (this one: ' + s.pages + ' pages, ' + s.duration_seconds + ' s, from ' + ((s.landing_page || {}).title || '?') + ')' : ''))],
      ['viewed', esc((v.recently_viewed || []).map(function (p) { return p.name || p.product_id; }).join(', ') || 'nothing')],
    ].concat(cartRows(v.cart))), v);
  }

  function renderCustomer(uid, answer) {
    var box = $('cw-customer');
    if (!box) return;
    if (!uid) return show(box, 'anonymous', 'Not signed in: Cartwatch knows this visitor only by its anonymous id.', '', null);
    if (!answer) return show(box, 'waiting', 'Asking...', '', null);
    if (answer.status === 403 || answer.status === 404) return show(box, 'unknown', 'Not linked yet: the identify has not arrived.', dl([['userId', '<span class="ids">' + esc(uid) + '</span>']]), null);
    if (answer.status !== 200) return show(box, 'error', errorText(answer), '', answer.doc);
    var c = answer.doc;
    var st = c.stats || {};
    var t = c.traits || {};
    show(box, 'known', '', dl([
      ['userId', '<span class="ids">' + esc(c.user_id) + '</span>'],
      ['traits', esc([t.first_name, t.email].filter(Boolean).join(', ') || 'none')],
      ['devices', esc((c.anonymous_ids || []).length)],
      ['orders', '<span id="cw-orders">' + esc(st.orders + ' order' + (st.orders === 1 ? '' : 's')) + '</span>' +
        (st.orders ? esc(', ' + amount(st.revenue, st.currency) + ' revenue, AOV ' + amount(st.average_order_value, st.currency)) : '')],
      ['recent', esc((c.recent_orders || []).map(function (o) { return o.order_id + ' ' + amount(o.revenue, o.currency); }).join(', ') || 'none')],
      ['LTV', esc(st.ltv == null ? 'n/a' : amount(st.ltv, st.currency))],
      ['RFM / ABC', esc((st.rfm && st.rfm.segment ? st.rfm.segment : 'n/a') + ' / ' + (st.abc || 'n/a'))],
    ].concat(cartRows(c.cart))), c);
  }

  function errorText(answer) {
    var e = answer.doc && answer.doc.error;
    var why = e ? e.message : 'no reason given';
    return answer.status ? 'The query API answered ' + answer.status + ': ' + why : why;
  }

  // ---- the query API, through the demo server ----
  function get(path) {
    return realFetch.call(window, path, { credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
      return res.text().then(function (text) {
        var doc = null;
        try {
          doc = JSON.parse(text);
        } catch (e) {}
        return { status: res.status, doc: doc };
      });
    }, function () {
      return { status: 0, doc: { error: { message: 'the demo server did not answer' } } };
    });
  }

  var busy = false;
  var again = false;
  var soon;
  function refreshSoon() {
    clearTimeout(soon);
    soon = setTimeout(refresh, 150);
  }
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    var aid = window.cartwatch && window.cartwatch.anonymousId;
    var who = null;
    try {
      who = JSON.parse(localStorage.getItem('demo_customer'));
    } catch (e) {}
    var uid = who && who.userId;
    if (!aid) return renderVisitor(null, null);
    busy = true;
    var stamp = $('cw-updated');
    get('/api/visitors/' + encodeURIComponent(aid))
      .then(function (v) {
        renderVisitor(aid, v);
        return uid ? get('/api/customers/' + encodeURIComponent(uid)) : null;
      })
      .then(function (c) {
        renderCustomer(uid, c);
        if (stamp) stamp.textContent = 'as of ' + new Date().toLocaleTimeString();
      })
      .finally(function () {
        busy = false;
        if (again) {
          again = false;
          refreshSoon();
        }
      });
  }

  function build() {
    var panel = document.createElement('aside');
    panel.id = 'cw-panel';
    panel.setAttribute('aria-label', 'Cartwatch live');
    if (localStorage.getItem('demo_panel_closed') === '1') panel.className = 'closed';
    var known = function (id, title) {
      return '<div id="' + id + '" data-state="waiting"><h3>' + title + '</h3><p class="state"></p><div class="summary"></div>' +
        '<details hidden><summary>the whole document</summary><pre id="' + id + '-json"></pre></details></div>';
    };
    panel.innerHTML =
      '<div class="cw-head"><h2><span class="dot"></span>Cartwatch live</h2>' +
      '<button id="cw-flush" title="Send what the tracker has queued now">Send now</button>' +
      '<button id="cw-toggle" title="Show or hide the panel">&#8646;</button></div>' +
      '<section><h3>What Cartwatch knows <span id="cw-updated" class="ids"></span></h3>' +
      known('cw-visitor', 'This visitor (GET /v1/visitors/{anonymousId})') +
      '<br>' + known('cw-customer', 'The customer (GET /v1/customers/{userId})') +
      '<p><button id="cw-refresh">Refresh</button></p></section>' +
      '<section><h3>What the tracker sent (newest first)</h3><ol id="cw-sent"></ol>' +
      '<p><button id="cw-clear">Clear</button></p></section>';
    // The panel sticks to the top of the window; its column is dark however long the page.
    var dock = document.createElement('div');
    dock.id = 'cw-dock';
    dock.appendChild(panel);
    document.body.appendChild(dock);
    $('cw-toggle').onclick = function () {
      panel.classList.toggle('closed');
      localStorage.setItem('demo_panel_closed', panel.classList.contains('closed') ? '1' : '0');
    };
    $('cw-refresh').onclick = refresh;
    $('cw-flush').onclick = function () {
      if (window.cartwatch && window.cartwatch.flush) window.cartwatch.flush();
    };
    $('cw-clear').onclick = function () {
      entries = [];
      save();
      renderSent();
    };
    renderSent();
    renderVisitor(null, null);
    renderCustomer(null, null);
    // The tracker loads asynchronously: its anonymous id is there once it has.
    var tries = 0;
    (function waitForTracker() {
      if (window.cartwatch && window.cartwatch.anonymousId) return refresh();
      if (++tries < 100) setTimeout(waitForTracker, 100);
      else renderVisitor(null, { status: 0, doc: { error: { message: 'the tracker did not load (is the collector serving /cartwatch.js?)' } } });
    })();
    setInterval(function () {
      if (document.visibilityState === 'visible') refresh();
    }, POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', build);
  else build();
})();
