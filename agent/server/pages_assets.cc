// The pages' script and style sheet, served by the agent itself so the pages need
// nothing from elsewhere and run under script-src 'self'. The script writes job
// output with textContent and createElement only: never as markup.
#include "agent/server/pages.h"

namespace sandci::agent::server {
namespace {

constexpr std::string_view kScript = R"JS('use strict';
(function () {
  var FINAL = ['success', 'failure', 'error', 'cancelled', 'skipped'];
  var POLL_MS = 2000;
  function isFinal(state) { return FINAL.indexOf(state) >= 0; }
  function runId() {
    var m = /^\/runs\/(\d+)/.exec(location.pathname);
    return m ? m[1] : null;
  }
  function getJson(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }
  function setState(el, prefix, state) {
    if (!el) return;
    el.textContent = state;
    var kept = [];
    el.classList.forEach(function (c) { if (c.indexOf('st-') !== 0) kept.push(c); });
    el.setAttribute('class', kept.concat(['st-' + state]).join(' '));
  }
  function duration(ms) {
    if (ms < 10000) return (Math.round(ms / 100) / 10) + 's';
    if (ms < 60000) return Math.round(ms / 1000) + 's';
    return Math.floor(ms / 60000) + 'm' + Math.floor((ms % 60000) / 1000) + 's';
  }
  // Elements of one job, compared by data-key (a job key is never put in a selector).
  function jobElements(key) {
    return Array.prototype.filter.call(document.querySelectorAll('[data-key]'), function (el) {
      return el.getAttribute('data-key') === key;
    });
  }

  function pollRun(id) {
    getJson('/api/runs/' + id).then(function (run) {
      setState(document.getElementById('run-state'), 'st-', run.state);
      var message = document.getElementById('run-message');
      if (message) message.textContent = run.message || '';
      (run.jobs || []).forEach(function (job) {
        jobElements(job.key).forEach(function (el) {
          var c = el.getAttribute('class') || '';
          if (/\bjstate\b/.test(c)) setState(el, 'st-', job.state);
          else if (/\bdur\b/.test(c)) {
            el.textContent = job.started_ms && job.finished_ms ? duration(job.finished_ms - job.started_ms) : '';
          } else {
            el.setAttribute('class', c.replace(/\bst-\S+/g, '') .trim() + ' st-' + job.state);
          }
        });
      });
      if (!isFinal(run.state)) setTimeout(function () { pollRun(id); }, POLL_MS);
      else document.body.setAttribute('data-final', run.state);
    }).catch(function () { setTimeout(function () { pollRun(id); }, POLL_MS * 3); });
  }

  // Log lines as the page renders them, built with createElement and textContent.
  var ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
  function appendLine(root, number, line, showTimestamps) {
    var m = /^(\d[0-9T:.+Z-]*:[0-9T:.+Z-]*) (.*)$/.exec(line);
    var stamp = m ? m[1] : '', text = (m ? m[2] : line).replace(ANSI, '');
    var parent = root.lastElementChild && root.lastElementChild.tagName === 'DETAILS' ? root.lastElementChild : root;
    var row;
    if (text.indexOf('##[step]') === 0) {
      row = document.createElement('details');
      row.open = true;
      row.className = 'step';
      var summary = document.createElement('summary');
      summary.appendChild(anchor(number));
      summary.appendChild(document.createTextNode(text.slice(8).trim()));
      row.appendChild(summary);
      parent = root;
    } else if (text.indexOf('##[group]') === 0 || text.indexOf('##[endgroup]') === 0) {
      return;
    } else {
      row = document.createElement('div');
      row.className = 'ln';
      row.appendChild(anchor(number));
      if (showTimestamps && stamp) {
        var ts = document.createElement('span');
        ts.className = 'ts';
        ts.textContent = stamp;
        row.appendChild(ts);
      }
      var tx = document.createElement('span');
      tx.className = 'tx';
      tx.textContent = text;
      row.appendChild(tx);
    }
    row.id = 'L' + number;
    parent.appendChild(row);
  }
  function anchor(number) {
    var a = document.createElement('a');
    a.className = 'num';
    a.href = '#L' + number;
    a.textContent = String(number);
    return a;
  }

  function pollLog(live) {
    var id = live.getAttribute('data-run'), key = live.getAttribute('data-job');
    var lines = parseInt(live.getAttribute('data-lines'), 10) || 0;
    var showTimestamps = live.getAttribute('data-timestamps') === '1';
    var root = document.getElementById('log');
    var base = '/runs/' + id + '/jobs/' + encodeURIComponent(key) + '/log';
    function tick() {
      getJson('/api/runs/' + id).then(function (run) {
        var job = (run.jobs || []).filter(function (j) { return j.key === key; })[0];
        var state = job ? job.state : run.state;
        return fetch(base + '?raw=1&after=' + lines, { cache: 'no-store' }).then(function (r) {
          return r.ok ? r.text() : '';
        }).then(function (text) {
          var parts = text.split('\n');
          if (parts.length && parts[parts.length - 1] === '') parts.pop();
          parts.forEach(function (line) { lines += 1; appendLine(root, lines, line, showTimestamps); });
          live.setAttribute('data-lines', String(lines));
          setState(document.getElementById('job-state'), 'st-', state);
          if (isFinal(state) || isFinal(run.state)) document.body.setAttribute('data-final', state);
          else setTimeout(tick, POLL_MS);
        });
      }).catch(function () { setTimeout(tick, POLL_MS * 3); });
    }
    tick();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var live = document.getElementById('log-live');
    var state = document.getElementById(live ? 'job-state' : 'run-state');
    var id = runId();
    if (!id || !state) return;
    if (isFinal(state.textContent)) { document.body.setAttribute('data-final', state.textContent); return; }
    if (live) pollLog(live); else pollRun(id);
  });
})();
)JS";

constexpr std::string_view kStyle = R"CSS(:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--code:#f6f8fa;
--ok:#1a7f37;--bad:#cf222e;--run:#9a6700;--idle:#6e7781}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1em;max-width:1100px;color:var(--fg);background:var(--bg);line-height:1.45}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
header{color:var(--muted);margin-bottom:.5em}
h1{font-size:1.4em;margin:.3em 0;word-break:break-word}h2{font-size:1.1em;margin:1em 0 .3em}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.9em;background:var(--code);padding:0 .25em;border-radius:4px;word-break:break-all}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:.8em;font-weight:600;color:#fff;background:var(--idle);vertical-align:middle}
.badge.st-success{background:var(--ok)}.badge.st-failure,.badge.st-error{background:var(--bad)}
.badge.st-running{background:var(--run)}.badge.st-queued,.badge.st-cancelled,.badge.st-skipped{background:var(--idle)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.6em 0}dt{color:var(--muted)}dd{margin:0;min-width:0}
.message:empty{display:none}
form.filter{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin:.5em 0 1em}
form.filter label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
form.filter input,form.filter select,form.filter button{font:inherit;padding:.25em .4em}
table.runs{border-collapse:collapse;width:100%}
table.runs th,table.runs td{padding:.4em .5em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
@media (max-width:640px){table.runs thead{display:none}table.runs tr{display:block;border-bottom:1px solid var(--line);padding:.4em 0}
table.runs td{display:inline-block;border:0;padding:.1em .4em}}
svg.dag{max-width:760px;display:block}
svg.dag{max-width:100%;height:auto}
svg.dag .box{fill:#fff;stroke:var(--line);stroke-width:1.5}
svg.dag .edge{fill:none;stroke:#8c959f;stroke-width:1.5}
nav.who{float:right;font-size:.85em;color:var(--muted)}nav.who form{display:inline}
.admin{display:flex;gap:.5em;margin:.5em 0}.admin button,nav.who button,form.login button{font:inherit;padding:.2em .7em;cursor:pointer}
form.login{display:flex;flex-wrap:wrap;gap:.5em;align-items:end}form.login label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
.refused{color:var(--bad)}.note{color:var(--muted);font-size:.85em}
svg.dag a:hover .box{fill:var(--code)}
svg.dag text{font-size:15px;fill:var(--fg);font-family:system-ui,sans-serif}
svg.dag .jstate,svg.dag .dur{fill:var(--muted)}
svg.dag .dot{fill:var(--idle)}svg.dag .dot.st-success{fill:var(--ok)}svg.dag .dot.st-failure,svg.dag .dot.st-error{fill:var(--bad)}
svg.dag .dot.st-running{fill:var(--run)}
svg.dag .box.st-failure,svg.dag .box.st-error{stroke:var(--bad)}svg.dag .box.st-running{stroke:var(--run)}
svg.dag .jstate.st-success{fill:var(--ok)}svg.dag .jstate.st-failure,svg.dag .jstate.st-error{fill:var(--bad)}svg.dag .jstate.st-running{fill:var(--run)}
.tools{font-size:.9em}
.log{background:#0d1117;color:#e6edf3;border-radius:6px;padding:.5em 0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px;overflow-x:auto}
.log details{margin:0}.log summary{cursor:pointer;padding:.15em .6em;font-weight:600;white-space:pre-wrap;word-break:break-word}
.log details.group summary{font-weight:400;color:#9198a1}
.log details.group{padding-left:1.2em}
.ln{display:flex;padding:0 .6em;white-space:pre-wrap;word-break:break-word}
.ln:target,.log details:target>summary{background:#3a3000}
.num{color:#6e7681;min-width:3.5em;text-align:right;padding-right:1em;flex:none;user-select:none}
.log summary .num{display:inline-block}
.ts{color:#6e7681;padding-right:1em;flex:none}
.tx{flex:1;min-width:0}
.ansi-bold{font-weight:700}
.ansi-30,.ansi-90{color:#6e7681}.ansi-31{color:#ff7b72}.ansi-32{color:#3fb950}.ansi-33{color:#d29922}.ansi-34{color:#58a6ff}
.ansi-35{color:#bc8cff}.ansi-36{color:#39c5cf}.ansi-37{color:#c9d1d9}.ansi-91{color:#ffa198}.ansi-92{color:#56d364}
.ansi-93{color:#e3b341}.ansi-94{color:#79c0ff}.ansi-95{color:#d2a8ff}.ansi-96{color:#56d4dd}.ansi-97{color:#fff}
)CSS";

}  // namespace

std::string_view pages_script() { return kScript; }
std::string_view pages_style() { return kStyle; }

}  // namespace sandci::agent::server
