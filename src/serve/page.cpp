// The maintenance page served at `/`: one self-contained document (no external assets, for
// air-gapped sites). It reads the API with the operator's token (kept in memory only: no
// cookie, no storage) and follows an upgrade's event stream with fetch(), which, unlike
// EventSource, can send the Authorization header.
#include "stepwise/serve.hpp"

namespace stepwise {

namespace {
constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Database maintenance · stepwise</title>
<style>
:root { --fg:#1d2433; --muted:#5b6475; --bg:#f4f6fa; --card:#fff; --line:#dde2ea;
        --ok:#1f8a4c; --warn:#b26a00; --bad:#c0392b; --accent:#2f6fde; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d2433; color:#fff; padding:14px 16px; display:flex; flex-wrap:wrap;
         align-items:center; gap:8px 16px; }
header h1 { font-size:18px; margin:0; font-weight:600; flex:1 1 auto; }
main { max-width:860px; margin:0 auto; padding:12px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:14px 16px; margin:12px 0; }
h2 { font-size:16px; margin:0 0 10px; }
.pill { display:inline-block; padding:2px 10px; border-radius:999px; font-size:14px;
        background:#556; color:#fff; }
.pill.ok { background:var(--ok); } .pill.warn { background:var(--warn); }
.pill.bad { background:var(--bad); } .pill.run { background:var(--accent); }
.muted { color:var(--muted); font-size:14px; }
.row { display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
input, select, button { font:inherit; padding:8px 10px; border-radius:8px;
                        border:1px solid var(--line); }
input[type=password] { flex:1 1 200px; min-width:0; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button.secondary { background:#fff; color:var(--fg); border-color:var(--line); }
button:disabled { opacity:.45; cursor:not-allowed; }
ul { margin:6px 0; padding-left:20px; }
li { margin:3px 0; word-break:break-word; }
.stop { color:var(--warn); font-weight:600; }
.bar { height:14px; background:#e7ebf2; border-radius:7px; overflow:hidden; }
.bar > div { height:100%; width:0; background:var(--accent); transition:width .2s; }
.bar.done > div { background:var(--ok); } .bar.failed > div { background:var(--bad); }
.release { margin:8px 0; }
.release .label { display:flex; justify-content:space-between; font-size:14px; }
.error { background:#fdecea; border:1px solid #f5c2bd; color:#7d1f16; padding:10px;
         border-radius:8px; margin-top:10px; }
.notice { background:#fff6e0; border:1px solid #f0d9a0; padding:10px; border-radius:8px;
          margin-top:10px; }
.success { background:#e6f5ec; border:1px solid #b7e0c6; padding:10px; border-radius:8px;
           margin-top:10px; }
#log { max-height:220px; overflow:auto; font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;
       background:#f7f8fb; border:1px solid var(--line); border-radius:8px; padding:8px;
       white-space:pre-wrap; word-break:break-word; }
.hidden { display:none; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:4px 12px; margin:0; }
dt { color:var(--muted); } dd { margin:0; word-break:break-word; }
@media (max-width:520px) { body { font-size:15px; } main { padding:6px; }
  section { padding:12px; } dl { grid-template-columns:1fr; } dt { margin-top:6px; } }
</style>
</head>
<body>
<header>
  <h1>Database maintenance</h1>
  <span id="db-pill" class="pill">loading…</span>
</header>
<main>
<section id="auth">
  <h2>Operator token</h2>
  <div class="row">
    <input id="token" type="password" autocomplete="off" placeholder="bearer token" aria-label="token">
    <button id="use-token" class="secondary" type="button">Use token</button>
  </div>
  <p id="auth-note" class="muted">Starting an upgrade needs the token. It stays in this tab's memory only.</p>
</section>

<section id="state">
  <h2>Database</h2>
  <dl>
    <dt>Schema version</dt><dd id="db-version">–</dd>
    <dt>Release</dt><dd id="db-release">–</dd>
    <dt>Expected</dt><dd id="db-expected">–</dd>
    <dt>Check</dt><dd id="db-meaning">–</dd>
  </dl>
  <ul id="findings"></ul>
  <div id="state-error" class="error hidden"></div>
</section>

<section id="plan">
  <h2>Upgrade plan</h2>
  <div class="row">
    <label for="target">To release</label>
    <select id="target"></select>
    <label><input id="offline" type="checkbox"> offline (no application instance runs)</label>
  </div>
  <div id="plan-body" class="muted">–</div>
  <div class="row" style="margin-top:10px">
    <button id="start" type="button" disabled>Start upgrade</button>
    <button id="cancel" type="button" class="secondary hidden">Cancel at next step</button>
    <span id="start-note" class="muted">Enter the token to start.</span>
  </div>
</section>

<section id="progress" class="hidden">
  <h2>Upgrade <span id="up-state" class="pill run">running</span></h2>
  <div class="release">
    <div class="label"><strong>Overall</strong><span id="overall-text">0 of 0 steps</span></div>
    <div id="overall" class="bar" data-done="0" data-total="0"><div></div></div>
  </div>
  <div id="releases"></div>
  <dl style="margin-top:10px">
    <dt>Current step</dt><dd id="current-step">–</dd>
    <dt>Elapsed</dt><dd id="elapsed">–</dd>
    <dt>Remaining</dt><dd id="remaining">–</dd>
  </dl>
  <div id="stop-box" class="notice hidden"></div>
  <div id="error-box" class="error hidden"></div>
  <div id="final" class="hidden"></div>
  <details style="margin-top:10px"><summary class="muted">Event log</summary><div id="log"></div></details>
</section>
</main>
<script>
(function () {
  'use strict';
  var token = '';
  var $ = function (id) { return document.getElementById(id); };
  var following = null, upgrade = null, startedAt = 0, lastRemaining = null, lastAt = 0;
  var latencies = [];
  window.stepwiseLatencies = latencies;

  function text(id, s) { $(id).textContent = s; }
  function show(id, on) { $(id).classList.toggle('hidden', !on); }
  function fmt(ms) {
    if (ms == null || isNaN(ms)) return '–';
    var s = Math.round(ms / 1000);
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60); s = s % 60;
    if (m < 60) return m + 'm' + (s < 10 ? '0' : '') + s + 's';
    var h = Math.floor(m / 60); m = m % 60;
    return h + 'h' + (m < 10 ? '0' : '') + m + 'm';
  }
  function headers() { return token ? { 'Authorization': 'Bearer ' + token } : {}; }
  function api(path, opts) {
    opts = opts || {};
    var h = headers();
    if (opts.body) h['Content-Type'] = 'application/json';
    return fetch(path, { method: opts.method || 'GET', headers: h, body: opts.body,
                         cache: 'no-store', credentials: 'omit' })
      .then(function (r) {
        return r.text().then(function (t) {
          var b = null; try { b = JSON.parse(t); } catch (e) { b = { error: t }; }
          return { status: r.status, body: b };
        });
      });
  }
  function plainError(b) {
    if (!b) return 'no answer';
    var s = b.error || 'error';
    if (b.hint) s += ' — ' + b.hint;
    return s;
  }
  function log(line) {
    var el = $('log');
    el.textContent += line + '\n';
    el.scrollTop = el.scrollHeight;
  }

  function needToken(status) {
    if (status === 401 || status === 403) {
      text('auth-note', status === 401 ? 'This server needs the token to show anything: enter it above.'
                                       : 'The token was not accepted.');
      return true;
    }
    return false;
  }

  function loadState() {
    return api('/v1/database').then(function (r) {
      if (needToken(r.status)) { text('db-pill', 'token needed'); return; }
      show('state-error', r.status !== 200);
      if (r.status !== 200) { text('state-error', plainError(r.body)); text('db-pill', 'unreachable');
        $('db-pill').className = 'pill bad'; return; }
      var d = r.body;
      text('db-version', String(d.database_version));
      text('db-expected', d.expected || '–');
      text('db-meaning', d.meaning || '');
      var pill = $('db-pill');
      pill.textContent = d.ok ? 'database OK' : (d.findings.length + ' finding(s)');
      pill.className = 'pill ' + (d.ok ? 'ok' : 'warn');
      var ul = $('findings'); ul.innerHTML = '';
      d.findings.slice(0, 50).forEach(function (f) {
        var li = document.createElement('li');
        li.textContent = f.kind + ': ' + f.object + ' (expected ' + (f.expected || '–') +
                         ', found ' + (f.actual || '–') + ')';
        ul.appendChild(li);
      });
    });
  }

  function loadReleases() {
    return api('/v1/releases').then(function (r) {
      if (r.status !== 200) return;
      var d = r.body, sel = $('target'), keep = sel.value;
      text('db-release', d.current ? d.current : 'none matches version ' + d.database_version);
      sel.innerHTML = '';
      d.releases.forEach(function (rel) {
        var o = document.createElement('option');
        o.value = rel.name; o.textContent = rel.name + ' (schema ' + rel.schema + ')';
        sel.appendChild(o);
      });
      sel.value = keep || d.latest || '';
    });
  }

  function loadPlan() {
    var to = $('target').value;
    if (!to) return Promise.resolve();
    return api('/v1/plan?to=' + encodeURIComponent(to) + '&offline=' + $('offline').checked)
      .then(function (r) {
        var body = $('plan-body'); body.innerHTML = '';
        if (r.status !== 200) { body.textContent = plainError(r.body); return; }
        var p = r.body.plan, ul = document.createElement('ul');
        var head = document.createElement('div');
        head.textContent = 'From release ' + p.from + ' to ' + p.to + ': ' + p.steps + ' migration(s).';
        body.appendChild(head);
        p.stages.forEach(function (s) {
          if (s.stop_before) {
            var st = document.createElement('li'); st.className = 'stop';
            st.textContent = 'Stop: roll out release ' + s.stop_before.roll_out +
              ' everywhere before continuing' + ($('offline').checked ? ' (passed: offline)' : '');
            ul.appendChild(st);
          }
          var li = document.createElement('li');
          li.textContent = 'Release ' + s.release + ' (schema ' + s.schema + '): ' +
                           (s.migrations.length ? s.migrations.length + ' migration(s)' : 'nothing to apply');
          ul.appendChild(li);
        });
        body.appendChild(ul);
        if (!r.body.ok) {
          var w = document.createElement('div'); w.className = 'notice';
          w.textContent = 'The database does not match release ' + p.from +
            ' yet; the upgrade would refuse to start: ' + (r.body.precheck.findings.length) + ' finding(s).';
          body.appendChild(w);
        }
      });
  }

  function refresh() {
    return Promise.all([loadState(), loadReleases()]).then(loadPlan).then(loadUpgrades)
      .catch(function (e) { text('db-pill', 'server unreachable'); $('db-pill').className = 'pill bad'; });
  }

  function loadUpgrades() {
    return api('/v1/upgrades').then(function (r) {
      if (r.status !== 200 || !r.body.upgrades.length) return;
      var u = r.body.upgrades[0];
      if (following !== u.id) follow(u.id);
    });
  }

  function canStart() {
    var running = upgrade && !upgrade.ended;
    $('start').disabled = !token || running;
    show('cancel', !!(token && running));
    text('start-note', !token ? 'Enter the token to start.' : running ? 'An upgrade is running.' : '');
  }

  // --- progress ---------------------------------------------------------------------------
  function resetProgress(id) {
    upgrade = { id: id, releases: {}, order: [], done: 0, total: 0, ended: false, state: 'running' };
    $('releases').innerHTML = ''; $('log').textContent = '';
    show('progress', true); show('error-box', false); show('stop-box', false); show('final', false);
    setState('running'); text('current-step', 'starting…'); text('elapsed', '–'); text('remaining', '–');
    setBar('overall', 0, 0);
  }
  function setState(s) {
    var el = $('up-state'); el.textContent = s;
    el.className = 'pill ' + (s === 'succeeded' ? 'ok' : s === 'running' || s === 'cancelling' ? 'run'
                              : s === 'halted' ? 'warn' : 'bad');
    $('progress').setAttribute('data-state', s);
  }
  function setBar(id, done, total) {
    var el = $(id);
    el.setAttribute('data-done', done); el.setAttribute('data-total', total);
    el.firstElementChild.style.width = (total ? Math.round(100 * done / total) : 0) + '%';
    el.classList.toggle('done', total > 0 && done >= total);
  }
  function releaseBar(name) {
    var r = upgrade.releases[name];
    if (r) return r;
    var wrap = document.createElement('div'); wrap.className = 'release';
    var label = document.createElement('div'); label.className = 'label';
    var n = document.createElement('span'); n.textContent = 'Release ' + name;
    var t = document.createElement('span');
    label.appendChild(n); label.appendChild(t);
    var bar = document.createElement('div'); bar.className = 'bar';
    bar.id = 'release-' + name.replace(/[^A-Za-z0-9_-]/g, '_'); bar.appendChild(document.createElement('div'));
    wrap.appendChild(label); wrap.appendChild(bar); $('releases').appendChild(wrap);
    r = upgrade.releases[name] = { done: 0, total: 0, bar: bar.id, text: t };
    upgrade.order.push(name);
    return r;
  }
  function updateRelease(name) {
    var r = releaseBar(name);
    setBar(r.bar, r.done, r.total);
    r.text.textContent = r.done + ' of ' + r.total;
  }
  function updateOverall() {
    setBar('overall', upgrade.done, upgrade.total);
    text('overall-text', upgrade.done + ' of ' + upgrade.total + ' steps');
  }

  function handle(ev) {
    var d = ev.data;
    switch (ev.type) {
      case 'started':
        startedAt = Date.parse(d.time); log('upgrade to ' + d.to + ' started' + (d.offline ? ' (offline)' : ''));
        break;
      case 'checking': log('checking that the database matches release ' + d.release); break;
      case 'plan':
        upgrade.total = d.plan.steps; updateOverall();
        d.plan.stages.forEach(function (s) { var r = releaseBar(s.release); r.total = s.migrations.length; updateRelease(s.release); });
        log('plan: ' + d.plan.steps + ' migration(s) from ' + d.plan.from + ' to ' + d.plan.to);
        break;
      case 'backup_started': text('current-step', 'backing up the database'); log('backup to ' + d.file + '…'); break;
      case 'backup_finished': log('backup written: ' + d.file); break;
      case 'lock_waiting': text('current-step', 'waiting for the migration lock (held by ' + d.holder + ')'); break;
      case 'release_started': log('release ' + d.release + ': ' + d.migrations + ' migration(s)'); break;
      case 'step_started':
        text('current-step', '[' + d.step + '/' + d.steps + '] release ' + d.release + ': ' + d.file);
        log('[' + d.step + '/' + d.steps + '] ' + d.file + ' …');
        break;
      case 'step_progress':
        text('current-step', '[' + d.step + '/' + d.steps + '] ' + d.file + ': ' + d.text); break;
      case 'step_finished':
        upgrade.done = d.step; updateOverall();
        if (d.release) { releaseBar(d.release).done++; updateRelease(d.release); }
        lastRemaining = d.remaining_ms; lastAt = Date.now();
        text('remaining', fmt(d.remaining_ms));
        log('[' + d.step + '/' + d.steps + '] ' + d.file + ' done in ' + fmt(d.duration_ms));
        if (!ev.replayed) latencies.push(Date.now() - Date.parse(d.time));
        break;
      case 'retrying': log(d.file + ': ' + d.reason + '; retry ' + d.attempt + '/' + d.max_attempts); break;
      case 'release_reached': log('reached release ' + d.release); break;
      case 'stop_reached':
        show('stop-box', true);
        text('stop-box', 'Stopped at release ' + d.reached + ': ' + d.message + '.');
        break;
      case 'cancel_requested': setState('cancelling'); log('cancel requested: ' + d.message); break;
      case 'warning': log('warning: ' + d.message); break;
      case 'finished':
      case 'failed':
      case 'cancelled':
        finish(ev.type, d); break;
    }
    if (upgrade && !upgrade.ended && startedAt) text('elapsed', fmt(Date.parse(d.time) - startedAt));
  }

  function finish(type, d) {
    upgrade.ended = true;
    var state = d.state || (type === 'finished' ? 'succeeded' : type);
    setState(state);
    text('elapsed', fmt(d.duration_ms));
    text('remaining', '–');
    var box = $('final'); show('final', true);
    if (type === 'finished' && d.ok) {
      box.className = state === 'halted' ? 'notice' : 'success';
      box.textContent = state === 'halted'
        ? 'Reached release ' + d.reached + ' (' + d.applied + ' migration(s) applied); the rest waits for the roll-out.'
        : 'Upgrade finished: the database is at release ' + d.reached + ' (' + d.applied + ' migration(s) applied).';
      text('current-step', 'done');
      if (state !== 'halted') $('overall').classList.add('done');
    } else {
      box.className = 'error';
      var s = type === 'cancelled' ? 'The upgrade was cancelled. ' : 'The upgrade failed. ';
      if (d.file) s += 'Step ' + d.file + ' did not complete. ';
      if (d.sqlstate) s += 'The server said (SQLSTATE ' + d.sqlstate + '): ';
      s += (d.error || '') + (d.hint ? ' — ' + d.hint : '');
      box.textContent = s;
      $('overall').classList.add('failed');
    }
    log(type + ': ' + (d.error || ('release ' + d.reached)));
    canStart();
    refresh();
  }

  function parseFrame(frame) {
    var ev = { id: 0, type: 'message', data: null };
    frame.split('\n').forEach(function (line) {
      if (line.indexOf('id: ') === 0) ev.id = parseInt(line.slice(4), 10);
      else if (line.indexOf('event: ') === 0) ev.type = line.slice(7);
      else if (line.indexOf('data: ') === 0) { try { ev.data = JSON.parse(line.slice(6)); } catch (e) {} }
    });
    return ev.data ? ev : null;
  }

  function follow(id) {
    following = id; resetProgress(id); canStart();
    var last = 0, liveFrom = Date.now();
    function connect() {
      if (following !== id || upgrade.ended) return;
      fetch('/v1/upgrades/' + id + '/events?after=' + last, { headers: headers(), cache: 'no-store', credentials: 'omit' })
        .then(function (r) {
          if (!r.ok) { needToken(r.status); return; }
          var reader = r.body.getReader(), dec = new TextDecoder(), buf = '';
          function pump() {
            return reader.read().then(function (x) {
              if (x.done) return;
              buf += dec.decode(x.value, { stream: true });
              var i;
              while ((i = buf.indexOf('\n\n')) >= 0) {
                var ev = parseFrame(buf.slice(0, i)); buf = buf.slice(i + 2);
                if (ev && ev.id > last) {
                  last = ev.id;
                  ev.replayed = Date.parse(ev.data.time) < liveFrom - 1000;
                  if (following === id) handle(ev);
                }
              }
              return pump();
            });
          }
          return pump();
        })
        .catch(function () {})
        .then(function () { if (following === id && !upgrade.ended) setTimeout(connect, 1000); });
    }
    connect();
  }

  setInterval(function () {
    if (upgrade && !upgrade.ended && startedAt) {
      text('elapsed', fmt(Date.now() - startedAt));
      if (lastRemaining != null) text('remaining', fmt(Math.max(0, lastRemaining - (Date.now() - lastAt))));
    }
  }, 1000);

  $('use-token').addEventListener('click', function () {
    token = $('token').value.trim(); $('token').value = '';
    text('auth-note', token ? 'Token set for this tab.' : 'Starting an upgrade needs the token.');
    canStart(); refresh();
  });
  $('target').addEventListener('change', loadPlan);
  $('offline').addEventListener('change', loadPlan);
  $('start').addEventListener('click', function () {
    var to = $('target').value;
    if (!to || !window.confirm('Start the upgrade to release ' + to + '?')) return;
    $('start').disabled = true;
    api('/v1/upgrades', { method: 'POST', body: JSON.stringify({ to: to, offline: $('offline').checked }) })
      .then(function (r) {
        if (r.status === 202) { follow(r.body.id); return; }
        needToken(r.status);
        text('start-note', plainError(r.body)); canStart();
      });
  });
  $('cancel').addEventListener('click', function () {
    if (!upgrade) return;
    api('/v1/upgrades/' + upgrade.id + '/cancel', { method: 'POST' }).then(function (r) {
      if (r.status !== 202) text('start-note', plainError(r.body));
    });
  });
  refresh();
  setInterval(function () { if (!upgrade || upgrade.ended) refresh(); }, 15000);
})();
</script>
</body>
</html>
)PAGE";
}  // namespace

std::string_view maintenance_page() {
  return kPage;
}

}  // namespace stepwise
