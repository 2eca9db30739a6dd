/**
 * The dashboard page's script, served as `assets/dashboard.js` (about 12 KB, no framework). It follows the SSE
 * stream, draws tables with `textContent` only (so a job's data or error can never become markup), charts with
 * uPlot, and sends actions as JSON POSTs carrying the page's CSRF token.
 *
 * Why no UI framework: the page is five panels redrawn from one JSON message every few seconds; plain DOM
 * calls do that in ~300 lines, where Preact (+ htm) would add ~5 KB and a build step for no behaviour gained.
 * uPlot (51 KB minified, no dependencies) draws thousands of points on canvas cheaply — Chart.js is ~200 KB.
 * @module
 */

/** The script, as served. Plain ES2020, no template literals (this is a TS template string). */
export const DASHBOARD_SCRIPT = `(function () {
  'use strict';
  var meta = function (name) { var m = document.querySelector('meta[name="' + name + '"]'); return m ? m.getAttribute('content') : ''; };
  var base = meta('hotpath-base');
  var csrf = meta('csrf-token');
  var canAct = meta('hotpath-can-act') === 'true';
  var charts = {};
  var last = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'className') node.className = attrs[k];
      else if (k === 'onclick') node.addEventListener('click', attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, String(attrs[k]));
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function ms(v) { return v === undefined || v === null ? '–' : v < 1 ? v.toFixed(3) + ' ms' : v < 1000 ? v.toFixed(1) + ' ms' : (v / 1000).toFixed(2) + ' s'; }
  function bytes(v) { return (v / 1048576).toFixed(1) + ' MB'; }
  function pct(v) { return (v * 100).toFixed(1) + ' %'; }
  function when(t) { return t ? new Date(t).toLocaleTimeString() : '–'; }
  function table(headers, rows, className) {
    return el('table', { className: className || '' }, [
      el('thead', null, [el('tr', null, headers.map(function (h) { return el('th', { text: h[0], className: h[1] || '' }); }))]),
      el('tbody', null, rows)
    ]);
  }
  function td(text, className) { return el('td', { text: String(text), className: className || '' }); }
  function replace(panel, nodes) {
    var body = document.querySelector('#' + panel + ' .body');
    var keep = {};
    body.querySelectorAll('[data-keep]').forEach(function (n) { keep[n.getAttribute('data-keep')] = n; });
    body.replaceChildren.apply(body, nodes.map(function (n) { var k = n.getAttribute && n.getAttribute('data-keep'); return k && keep[k] ? keep[k] : n; }));
  }
  function toast(text, isError) {
    var t = document.getElementById('toast') || document.body.appendChild(el('div', { id: 'toast' }));
    t.textContent = text; t.className = isError ? 'error' : '';
    clearTimeout(toast.timer); toast.timer = setTimeout(function () { t.remove(); }, 4000);
  }
  function post(path, body) {
    return fetch(base + path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) {
      if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
      toast('done: ' + path.split('/').slice(-2).join(' ')); refresh(); return j;
    }); }).catch(function (e) { toast(e.message, true); });
  }
  function action(label, path, body, confirmText) {
    if (!canAct || (last && last.readOnly)) return null;
    return el('button', { text: label, 'data-action': label.toLowerCase(), onclick: function () {
      if (confirmText && !window.confirm(confirmText)) return; post(path, body);
    } });
  }

  function chart(id, title, seriesNames, labels, history, unit) {
    var holder = document.querySelector('[data-keep="' + id + '"]');
    if (!holder) holder = el('div', { className: 'chart', 'data-keep': id });
    var data = [history.t].concat(seriesNames.map(function (s) { return history.series[s] || history.t.map(function () { return null; }); }));
    var key = seriesNames.join('|');
    var existing = charts[id];
    holder.setAttribute('data-points', String(history.t.length));
    if (existing && existing.key === key) { existing.plot.setData(data); return holder; }
    if (existing) existing.plot.destroy();
    holder.replaceChildren();
    var colors = ['#0969da', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#1b7c83'];
    var opts = { title: title, width: 420, height: 180, scales: { x: { time: true } },
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return v === null ? '' : v + (unit || ''); }); } }],
      series: [{}].concat(seriesNames.map(function (s, i) { return { label: labels[i], stroke: colors[i % colors.length], width: 1.5, spanGaps: true }; })) };
    var plot = new window.uPlot(opts, data, holder);
    charts[id] = { key: key, plot: plot };
    return holder;
  }

  function jobRow(job, withActions) {
    var progress = job.progress ? el('div', null, [
      el('progress', { max: job.progress.total || 100, value: job.progress.done }),
      ' ' + job.progress.done + (job.progress.total ? ' / ' + job.progress.total : '') + (job.progress.stage ? ' · ' + job.progress.stage : '')
    ]) : '–';
    var error = job.error ? el('div', null, [
      el('div', { className: 'error', text: job.error.name + ': ' + job.error.message }),
      job.error.stack ? el('details', null, [el('summary', { text: 'stack' }), el('pre', { text: job.error.stack })]) : null
    ]) : '';
    var actions = el('td', { className: 'row-actions' }, withActions ? [
      job.status === 'failed' || job.status === 'cancelled' ? action('Retry', '/api/jobs/' + encodeURIComponent(job.id) + '/retry') : null,
      job.status === 'queued' || job.status === 'running' ? action('Cancel', '/api/jobs/' + encodeURIComponent(job.id) + '/cancel') : null
    ] : []);
    return el('tr', { 'data-job-id': job.id, 'data-status': job.status }, [
      el('td', null, [el('code', { text: job.id.slice(-12), title: job.id })]),
      td(job.type), el('td', { className: job.status === 'failed' ? 'bad' : job.status === 'succeeded' ? 'ok' : '', text: job.status }),
      td(job.attempts + (job.maxAttempts ? '/' + job.maxAttempts : ''), 'num'),
      el('td', null, [progress]), td(job.worker || '–'),
      el('td', null, [error]), el('td', null, [el('pre', { className: 'job-data', text: job.data })]), actions
    ]);
  }
  var jobHeaders = [['id'], ['type'], ['status'], ['attempts', 'num'], ['progress'], ['worker'], ['error'], ['data'], ['']];

  function renderQueue(s) {
    var q = s.queue;
    if (!q) return replace('queue-panel', [el('p', { className: 'muted', text: 'No queue configured.' })]);
    var nodes = [];
    if (q.error) nodes.push(el('p', { className: 'error', text: q.error }));
    nodes.push(el('div', { className: 'counts' }, Object.keys(q.counts).map(function (k) {
      return el('div', { className: 'count', 'data-count': k }, [el('b', { text: String(q.counts[k]) }), k]);
    }).concat([el('div', { className: 'count' }, [el('b', { text: q.throughputPerSec.toFixed(2) }), 'jobs/s (1 min)'])])));
    var types = Object.keys(q.byType);
    if (types.length) nodes.push(table([['type'], ['queued', 'num'], ['running', 'num'], ['failed', 'num']], types.map(function (t) {
      var c = q.byType[t]; return el('tr', null, [td(t), td(c.queued || 0, 'num'), td(c.running || 0, 'num'), td(c.failed || 0, 'num')]);
    })));
    nodes.push(el('div', { className: 'charts' }, [
      chart('chart-throughput', 'Throughput (jobs/s) and backlog', ['queue.throughput', 'queue.queued', 'queue.running'], ['finished/s', 'queued', 'running'], s.history),
      chart('chart-latency', 'Wait / run time (ms)', ['queue.wait.p50', 'queue.wait.p95', 'queue.wait.p99', 'queue.run.p50', 'queue.run.p95', 'queue.run.p99'], ['wait p50', 'wait p95', 'wait p99', 'run p50', 'run p95', 'run p99'], s.history)
    ]));
    nodes.push(el('div', { className: 'figures' }, [
      el('div', { className: 'figure' }, [el('b', { text: ms(q.waitMs.p99) }), 'wait p99 (p50 ' + ms(q.waitMs.p50) + ', p95 ' + ms(q.waitMs.p95) + ')']),
      el('div', { className: 'figure' }, [el('b', { text: ms(q.runMs.p99) }), 'run p99 (p50 ' + ms(q.runMs.p50) + ', p95 ' + ms(q.runMs.p95) + ')']),
      action('Purge', '/api/queue/purge', {}, 'Cancel every queued job?')
    ]));
    nodes.push(el('h3', { text: 'Running (' + q.running.length + ')' }));
    nodes.push(table(jobHeaders, q.running.map(function (j) { return jobRow(j, true); }), 'jobs running-jobs'));
    var seen = {}; var failed = [];
    q.recentlyFailed.concat(q.failed).forEach(function (j) { if (!seen[j.id]) { seen[j.id] = 1; failed.push(j); } });
    nodes.push(el('h3', { text: 'Failed lately (' + failed.length + ')' }));
    nodes.push(table(jobHeaders, failed.map(function (j) { return jobRow(j, true); }), 'jobs failed-jobs'));
    replace('queue-panel', nodes);
  }

  function renderCaches(s) {
    if (!s.caches.length) return replace('caches-panel', [el('p', { className: 'muted', text: 'No caches configured.' })]);
    var rows = s.caches.map(function (c) {
      return el('tr', { 'data-cache': c.name }, [td(c.name), td(pct(c.hitRate), 'num'), td(c.size + (c.max ? ' / ' + c.max : ''), 'num cache-size'),
        td(c.evictions, 'num'), td(c.staleHits, 'num'), td(c.loads, 'num'), td(c.enabled ? 'on' : 'off')]);
    });
    var nodes = [table([['cache'], ['hit rate', 'num'], ['size / max', 'num'], ['evictions', 'num'], ['stale hits', 'num'], ['loads', 'num'], ['enabled']], rows)];
    if (canAct && !s.readOnly) {
      var form = document.querySelector('[data-keep="invalidate"]');
      if (!form) {
        var select = el('select', { 'aria-label': 'cache' });
        var input = el('input', { placeholder: 'key or tag', 'aria-label': 'key or tag' });
        var run = function (kind) { return function () {
          var body = kind === 'all' ? { all: true } : {}; if (kind !== 'all') body[kind] = input.value;
          post('/api/caches/' + encodeURIComponent(select.value) + '/invalidate', body);
        }; };
        form = el('div', { 'data-keep': 'invalidate' }, [el('h3', { text: 'Invalidate' }), select, ' ', input, ' ',
          el('button', { text: 'Key', 'data-action': 'invalidate-key', onclick: run('key') }), ' ',
          el('button', { text: 'Tag', 'data-action': 'invalidate-tag', onclick: run('tag') }), ' ',
          el('button', { text: 'All', 'data-action': 'invalidate-all', onclick: run('all') })]);
      }
      var sel = form.querySelector('select'); var chosen = sel.value;
      sel.replaceChildren.apply(sel, s.caches.map(function (c) { return el('option', { value: c.name, text: c.name }); }));
      if (chosen) sel.value = chosen;
      nodes.push(form);
    }
    var names = s.caches.map(function (c) { return c.name; });
    nodes.push(el('div', { className: 'charts' }, [
      chart('chart-cache-hit', 'Hit rate', names.map(function (n) { return 'cache.' + n + '.hitRate'; }), names, s.history),
      chart('chart-cache-loads', 'Loads / s', names.map(function (n) { return 'cache.' + n + '.loads'; }), names, s.history)
    ]));
    replace('caches-panel', nodes);
  }

  function renderLimiters(s) {
    if (!s.limiters.length) return replace('limiters-panel', [el('p', { className: 'muted', text: 'No rate limiters configured.' })]);
    replace('limiters-panel', [table([['limiter'], ['limit'], ['running', 'num'], ['queued', 'num'], ['rejected', 'num'], ['paused until'], ['upstream said']],
      s.limiters.map(function (l) {
        return el('tr', { 'data-limiter': l.name }, [td(l.name), td(l.limit + ' / ' + ms(l.intervalMs)), td(l.running, 'num'), td(l.queued, 'num'), td(l.rejected, 'num'),
          td(l.pausedUntil ? when(l.pausedUntil) : '–', l.pausedUntil ? 'warn' : ''),
          td(l.upstream ? l.upstream.remaining + ' left, resets ' + when(l.upstream.resetAt) + ' (at ' + when(l.upstream.at) + ')' : '–')]);
      }))]);
  }

  function renderProfiler(s) {
    var p = s.profiler; var loop = p.eventLoop;
    var nodes = [el('div', { className: 'figures' }, [
      el('div', { className: 'figure', 'data-figure': 'loop-p99' }, [el('b', { text: loop ? ms(loop.p99) : '–' }), 'event-loop delay p99']),
      el('div', { className: 'figure', 'data-figure': 'loop-max' }, [el('b', { className: loop && loop.max > 100 ? 'bad' : '', text: loop ? ms(loop.max) : '–' }), 'event-loop delay max']),
      el('div', { className: 'figure' }, [el('b', { text: bytes(p.memory.heapUsed) }), 'heap (peak ' + bytes(p.memory.peakHeapUsed) + ')']),
      el('div', { className: 'figure' }, [el('b', { text: bytes(p.memory.rss) }), 'rss (peak ' + bytes(p.memory.peakRss) + ')']),
      el('div', { className: 'figure' }, [el('b', { text: (s.historyBytes / 1024).toFixed(0) + ' KB' }), 'chart history'])
    ]), el('div', { className: 'charts' }, [
      chart('chart-loop', 'Event-loop delay (ms)', ['eventLoop.p99', 'eventLoop.max'], ['p99', 'max'], s.history),
      chart('chart-memory', 'Memory (MB)', ['memory.heapUsed', 'memory.rss'], ['heap', 'rss'], s.history)
    ]), table([['operation'], ['count', 'num'], ['errors', 'num'], ['p50', 'num'], ['p95', 'num'], ['p99', 'num'], ['p99.9', 'num'], ['max', 'num']],
      p.operations.map(function (o) { return el('tr', null, [td(o.name), td(o.count, 'num'), td(o.errors, 'num'), td(ms(o.p50), 'num'), td(ms(o.p95), 'num'), td(ms(o.p99), 'num'), td(ms(o.p999), 'num'), td(ms(o.max), 'num')]); }), 'operations')];
    nodes.push(el('h3', { text: 'Slow operations (' + p.slow.length + ')' }));
    nodes.push(table([['when'], ['operation'], ['ms', 'num'], ['scope']], p.slow.map(function (o) { return el('tr', null, [td(when(o.at)), td(o.name), td(ms(o.ms), 'num'), td(o.scope || '–')]); })));
    nodes.push(el('h3', { text: 'N+1 reports (' + p.nPlusOne.length + ')' }));
    nodes.push(table([['when'], ['scope'], ['statement shape'], ['count', 'num']], p.nPlusOne.map(function (o) { return el('tr', null, [td(when(o.at)), td(o.scope), el('td', null, [el('pre', { text: o.shape })]), td(o.count, 'num')]); })));
    replace('profiler-panel', nodes);
  }

  function renderStorage(s) {
    var st = s.storage;
    replace('storage-panel', [table([['backend'], ['health'], ['latency', 'num'], ['pool total', 'num'], ['idle', 'num'], ['waiting', 'num']], [
      el('tr', null, [td(st.kind + ' · ' + s.config.databaseUrl), td(st.ok ? 'ok' : 'down' + (st.error ? ': ' + st.error : ''), st.ok ? 'ok' : 'bad'),
        td(ms(st.latencyMs), 'num'), td(st.pool.total, 'num'), td(st.pool.idle, 'num'), td(st.pool.waiting, 'num')])])]);
  }

  // The history arrives whole once, then as the rows after the previous message: append, dedupe, trim.
  var hist = null;
  function mergeHistory(h) {
    if (!h.isTail || !hist) { hist = { t: h.t.slice(), series: {} }; for (var k in h.series) hist.series[k] = h.series[k].slice(); return hist; }
    var lastT = hist.t.length ? hist.t[hist.t.length - 1] : -Infinity;
    for (var i = 0; i < h.t.length; i++) {
      if (h.t[i] <= lastT) continue;
      hist.t.push(h.t[i]);
      for (var name in h.series) {
        if (!hist.series[name]) hist.series[name] = hist.t.slice(0, -1).map(function () { return null; });
        hist.series[name].push(h.series[name][i]);
      }
      for (var known in hist.series) if (hist.series[known].length < hist.t.length) hist.series[known].push(null);
    }
    var extra = hist.t.length - h.capacity;
    if (extra > 0) { hist.t.splice(0, extra); for (var s2 in hist.series) hist.series[s2].splice(0, extra); }
    return hist;
  }

  function render(s) {
    s.history = mergeHistory(s.history);
    last = s;
    document.getElementById('mode').textContent = s.readOnly || !canAct ? 'read-only' : 'actions enabled';
    document.getElementById('config').textContent = s.config.profile + ' · ' + s.config.storage + (s.config.redisUrl ? ' · ' + s.config.redisUrl : '');
    [renderQueue, renderCaches, renderLimiters, renderProfiler, renderStorage].forEach(function (f) {
      try { f(s); } catch (e) { console.warn('dashboard panel failed', e); }
    });
    document.body.setAttribute('data-rendered-at', String(s.at));
  }
  function refresh() {
    fetch(base + '/api/state', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(render).catch(function () {});
  }

  var connection = document.getElementById('connection');
  var source = new EventSource(base + '/api/events');
  source.addEventListener('snapshot', function (e) {
    connection.textContent = 'live'; connection.className = 'badge ok';
    render(JSON.parse(e.data));
  });
  source.onerror = function () { connection.textContent = 'reconnecting…'; connection.className = 'badge warn'; };
})();
`;
