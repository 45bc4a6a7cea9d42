# ruff: noqa: E501 — HTML lines read better whole than wrapped to Python's width
"""The report.html template. Kept as a Python string, not a data file, so that any install of
the package (not only an editable one) can render reports: it needs no package-data setup.

Everything is inline (CSS, a little JS, SVG); the only links are relative ones to evidence
files in the run directory, so the report opens the same offline, archived or mailed.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>carbench {{ outcome.label }} — {{ target_name }} ({{ manifest.get('profile', '?') }})</title>
<style>
:root { --pass:#2e7d32; --fail:#c62828; --error:#6a1b9a; --inconclusive:#ef6c00;
        --pending-operator:#1565c0; --not-applicable:#757575; --untested:#bdbdbd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 0 16px 48px; color: #212121; }
h1 { font-size: 22px; margin: 18px 0 6px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.banner { padding: 14px 18px; border-radius: 6px; color: #fff; font-size: 18px; margin: 10px 0; }
.banner small { display: block; font-size: 13px; opacity: .9; }
.banner.PASS { background: var(--pass); } .banner.FAIL { background: var(--fail); }
.banner.ERROR, .banner.INTERRUPTED { background: var(--error); }
.banner.SUBSET, .banner.NOT-JUDGED { background: var(--inconclusive); }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
table.kv th { width: 190px; }
.v { display: inline-block; padding: 1px 7px; border-radius: 9px; color: #fff; font-size: 12px;
     white-space: nowrap; }
.v-pass { background: var(--pass); } .v-fail { background: var(--fail); }
.v-error { background: var(--error); } .v-inconclusive { background: var(--inconclusive); }
.v-pending-operator { background: var(--pending-operator); }
.v-not-applicable { background: var(--not-applicable); }
.v-untested, .v-not-run { background: var(--untested); color: #212121; }
.counts span { margin-right: 10px; }
pre { background: #fafafa; border: 1px solid #eee; padding: 6px; overflow: auto; max-height: 420px;
      white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
details.test { border: 1px solid #e0e0e0; border-radius: 4px; margin: 6px 0; padding: 4px 8px; }
details.test > summary { cursor: pointer; }
details.test[data-verdict="fail"] { border-left: 4px solid var(--fail); }
details.test[data-verdict="error"] { border-left: 4px solid var(--error); }
details.test[data-verdict="pass"] { border-left: 4px solid var(--pass); }
.reason { white-space: pre-wrap; font-size: 12px; max-height: 9em; overflow: auto; }
.quote { color: #5d4037; font-size: 12px; margin-top: 2px; }
.muted { color: #757575; } .mono { font-family: ui-monospace, monospace; font-size: 12px; }
.note { background: #fff8e1; border: 1px solid #ffe082; padding: 6px 10px; border-radius: 4px; }
.bar { background: #eee; height: 10px; border-radius: 5px; width: 160px; display: inline-block; }
.bar > i { display: block; height: 10px; border-radius: 5px; background: var(--pass); }
svg.chart { font: 12px system-ui, sans-serif; max-width: 100%; height: auto; display: block;
            margin: 8px 0; } svg.chart .t { font-weight: 600; }
.filters button { margin: 0 4px 4px 0; border: 1px solid #ccc; background: #fff; border-radius: 4px;
                  padding: 2px 8px; cursor: pointer; } .filters button.on { background: #e3f2fd; }
img.evidence { max-width: 100%; border: 1px solid #eee; }
nav a { margin-right: 12px; }
table.signoff td { height: 34px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 10.5px; }
  nav, .filters, script { display: none; }
  h2 { break-after: avoid; } tr, details.test, svg.chart { break-inside: avoid; }
  pre { max-height: none; overflow: visible; } .reason { max-height: none; }
  .banner, .v { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
</style>
</head>
<body>
<h1>carbench conformance report</h1>
<nav><a href="#summary">Summary</a><a href="#standards">Standards</a><a href="#matrix">Clause matrix</a><a href="#charts">Charts</a>
<a href="#tests">Tests</a><a href="#manifest">Manifest</a><a href="#integrity">Integrity</a></nav>

<div class="banner {{ outcome.label }}" id="summary">{{ outcome.label }} — {{ outcome.explanation }}
<small>exit status {{ outcome.status }}{% if outcome.deciding %}: {{ outcome.deciding[:12]|join(', ') }}{% if outcome.deciding|length > 12 %} …{% endif %}{% endif %}</small></div>

<table class="kv">
<tr><th>Device under test</th><td><b>{{ dut.get('vendor', '?') }} {{ dut.get('model', '?') }}</b>{% if dut.get('version') %} · version {{ dut.get('version') }}{% endif %}{% if dut.get('serial') %} · serial {{ dut.get('serial') }}{% endif %}</td></tr>
<tr><th>Target</th><td>{{ target_name }} <span class="mono muted">{{ target.get('path', '') }} · SM3 {{ target.get('sm3', '')[:16] }}…</span></td></tr>
<tr><th>Lab · operator</th><td>{{ lab.get('name') or '—' }} · {{ lab.get('operator') or '—' }}</td></tr>
<tr><th>Profile · clock</th><td>{{ manifest.get('profile', '?') }} · {{ manifest.get('clock', '?') }} · suites: {{ manifest.get('suites', ['?'])|join(', ') }}</td></tr>
<tr><th>Started · ended</th><td>{{ (manifest.get('started', '?')|string)[:19] }} · {{ (manifest.get('ended', '?')|string)[:19] }} UTC</td></tr>
<tr><th>Duration</th><td>{{ duration }}</td></tr>
<tr><th>Bench</th><td>carbench {{ bench.get('version', '?') }} · git {{ git_text }}</td></tr>
<tr><th>Tests ({{ tests|length }})</th><td class="counts">{% for v, n in test_counts %}<span><span class="v v-{{ v }}">{{ v }}</span> {{ n }}</span>{% endfor %}</td></tr>
<tr><th>Clauses ({{ clause_total }})</th><td class="counts">{% for v, n in clause_counts %}<span><span class="v v-{{ v }}">{{ v }}</span> {{ n }}</span>{% endfor %}</td></tr>
<tr><th>Clause coverage</th><td>{% if coverage %}{% for c in coverage %}<span style="margin-right:14px">{{ c.standard }} {% if c.percent is none %}—{% else %}{{ '%.0f'|format(c.percent) }} %{% endif %} <span class="muted">({{ c.auto_tested }}/{{ c.auto_total }} auto)</span></span>{% endfor %}{% else %}<span class="muted">{{ catalogue_note }}</span>{% endif %}</td></tr>
<tr><th>results.json</th><td class="mono">{% if integrity %}SM3 {{ integrity.get('sm3', '') }} · SM2 key {{ integrity.get('fingerprint', '') }}{% else %}unsigned{% endif %}</td></tr>
</table>
{% if documents %}<h2 id="standards">Standards</h2>
<table class="kv">{% for sid, title, title_en in documents %}<tr><th>{{ sid }}</th><td lang="zh">{{ title }}<div class="muted">{{ title_en }}</div></td></tr>{% endfor %}</table>{% endif %}
{% if not catalogue_loaded %}<p class="note">{{ catalogue_note }} — the matrix lists the clauses the tests name; mandatory clauses, coverage and untested clauses cannot be shown.</p>{% endif %}

<h2 id="matrix">Clause matrix</h2>
<p class="filters"><label><input type="checkbox" id="judged-only"> show only the clauses this run judged (untested and not-run rows hidden; the lists below stay)</label></p>
{% for s in standards %}
<h3>{{ s.name }}{% if s.coverage and s.coverage.percent is not none %} — coverage {{ '%.0f'|format(s.coverage.percent) }} % <span class="bar"><i style="width:{{ '%.0f'|format(s.coverage.percent) }}%"></i></span> <span class="muted">{{ s.coverage.auto_tested }} of {{ s.coverage.auto_total }} auto clauses have a test</span>{% elif s.coverage %} <span class="muted">— no auto clauses</span>{% endif %}</h3>
<table class="matrix">
<tr><th>Clause</th>{% if catalogue_loaded %}<th>Level</th><th>Class</th>{% endif %}<th>Summary</th><th>Tests</th><th>Verdict</th><th>Reason</th></tr>
{% for r in s.rows %}
<tr id="clause-{{ r.anchor }}" data-verdict="{{ r.verdict }}"><td class="mono">{{ r.id }}</td>{% if catalogue_loaded %}<td>{{ r.level }}</td><td>{{ r.testability }}</td>{% endif %}
<td>{{ r.summary }}{% if r.quote %}<div class="quote" lang="zh">{{ r.quote }}</div>{% endif %}</td>
<td>{% for t in r.tests %}{% if t.anchor %}<a href="#{{ t.anchor }}"><span class="v v-{{ t.verdict }}" title="{{ t.verdict }}">{{ t.short }}</span></a>{% else %}<span class="v v-{{ t.verdict }}" title="{{ t.verdict }}">{{ t.short }}</span>{% endif %} {% endfor %}</td>
<td><span class="v v-{{ r.verdict }}">{{ r.verdict }}</span>{% if r.partial %} <span class="v v-inconclusive" title="judged in part">partial</span>{% endif %}</td><td>{% if r.partial %}<div class="reason"><b>Not judged:</b> {{ r.partial }}</div>{% endif %}<div class="reason">{{ r.reason|truncate(400, True, ' …') }}</div></td></tr>
{% endfor %}
</table>
{% if s.untested %}<p><b>Untested auto clauses ({{ s.untested|length }}):</b> {% for c in s.untested %}<span class="mono">{{ c.id }}</span>{% if c.summary %} <span class="muted">({{ c.summary }})</span>{% endif %}{% if not loop.last %}; {% endif %}{% endfor %}</p>{% endif %}
{% endfor %}
{% if unknown_clauses %}<p class="note">Tests name clauses the catalogue does not know: {{ unknown_clauses|join(', ') }}</p>{% endif %}
{% if not standards %}<p class="note">No test named a clause.</p>{% endif %}

<h2 id="charts">Charts</h2>
{{ chart_suites }}
{{ chart_slowest }}
{% for c in chart_measurements %}{{ c }}{% endfor %}
{% if not chart_measurements %}<p class="muted">No test recorded measurements.</p>{% endif %}

<h2 id="tests">Tests</h2>
<div class="filters">Show: <button data-f="all" class="on">all</button>{% for v, n in test_counts %}<button data-f="{{ v }}">{{ v }} ({{ n }})</button>{% endfor %}
<button data-open="1">expand all</button><button data-open="0">collapse all</button></div>
{% for suite, group in suites %}
<h3>{{ suite }} <span class="muted">({{ group|length }})</span></h3>
{% for t in group %}
<details class="test" id="{{ t.anchor }}" data-verdict="{{ t.verdict }}"{% if t.open %} open{% endif %}>
<summary><span class="v v-{{ t.verdict }}">{{ t.verdict }}</span> <span class="mono">{{ t.case }}</span> <b>{{ t.title }}</b> <span class="muted">{{ '%.2f'|format(t.seconds) }} s · {{ t.clauses|join(', ') }}</span></summary>
<table class="kv">
<tr><th>Test</th><td class="mono">{{ t.case }} · {{ t.nodeid }}</td></tr>
<tr><th>Clauses</th><td>{% for c in t.clause_links %}<a class="mono" href="#clause-{{ c.anchor }}">{{ c.id }}</a>{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% if t.reason %}<tr><th>Reason</th><td><pre>{{ t.reason }}</pre></td></tr>{% endif %}
{% if t.steps %}<tr><th>Steps</th><td><table><tr><th>#</th><th>Step</th><th>Outcome</th><th>s</th></tr>
{% for st in t.steps %}<tr><td>{{ loop.index }}</td><td>{{ st.title }}</td><td>{{ st.outcome }}</td><td>{{ '%.3f'|format(st.seconds) }}</td></tr>{% endfor %}</table></td></tr>{% endif %}
{% if t.measurements %}<tr><th>Measurements</th><td><table>{% for k, v, unit in t.measurements %}<tr><td class="mono">{{ k }}</td><td>{{ v }} {{ unit }}</td></tr>{% endfor %}</table></td></tr>{% endif %}
{% if t.attachments %}<tr><th>Evidence</th><td>{% for a in t.attachments %}
<div><b>{{ a.name }}</b> <span class="muted mono">{{ a.path }} · {{ a.media_type }}</span>{% if a.href %} · <a href="{{ a.href }}">open</a>{% endif %}
{% if a.kind == 'text' %}<pre>{{ a.text }}</pre>{% elif a.kind == 'image' %}<br><img class="evidence" alt="{{ a.name }}" src="{{ a.data_uri }}">{% endif %}
{% if a.note %}<div class="muted">{{ a.note }}</div>{% endif %}</div>
{% endfor %}</td></tr>{% endif %}
</table>
</details>
{% endfor %}
{% endfor %}
{% if not tests %}<p class="note">The run recorded no tests.</p>{% endif %}
{% if not_run %}<h3>Not run <span class="muted">({{ not_run|length }})</span></h3>
<table><tr><th>Test</th><th>Clauses</th><th>Why</th></tr>
{% for e in not_run %}<tr><td class="mono">{{ e.nodeid }}</td><td>{{ e.clauses|join(', ') }}</td><td>{{ e.why }}</td></tr>{% endfor %}</table>{% endif %}

<h2 id="manifest">Reproducibility manifest</h2>
<table class="kv">
{% for k, v in manifest_rows %}<tr><th>{{ k }}</th><td>{% if v.multiline %}<pre>{{ v.text }}</pre>{% else %}<span class="mono">{{ v.text }}</span>{% endif %}</td></tr>{% endfor %}
</table>

<h2 id="sign-off">Sign-off</h2>
<table class="signoff"><tr><th></th><th>Name</th><th>Signature</th><th>Date</th></tr>
<tr><th>Tested by</th><td>{{ lab.get('operator', '') }}</td><td></td><td></td></tr>
<tr><th>Reviewed by</th><td></td><td></td><td></td></tr>
<tr><th>Approved by</th><td></td><td></td><td></td></tr></table>

<h2 id="integrity">Integrity</h2>
{% if integrity %}
<p>results.json is hashed with SM3 and signed with SM2 over its canonical content ({{ integrity.get('canonical', '') }}).
Check it with <code>carbench verify results.json --pubkey bench-signing-key.pub.pem</code>; without <code>--pubkey</code> only the embedded key is used.</p>
<table class="kv"><tr><th>SM3</th><td class="mono">{{ integrity.get('sm3', '') }}</td></tr>
<tr><th>Key fingerprint</th><td class="mono">{{ integrity.get('fingerprint', '') }}</td></tr>
<tr><th>Public key</th><td><pre>{{ integrity.get('public_key', '') }}</pre></td></tr></table>
{% else %}<p class="note">This results.json carries no signature.</p>{% endif %}

<script>
(function () {
  var buttons = document.querySelectorAll('.filters button[data-f]');
  buttons.forEach(function (b) {
    b.addEventListener('click', function () {
      buttons.forEach(function (o) { o.classList.toggle('on', o === b); });
      document.querySelectorAll('details.test').forEach(function (d) {
        d.style.display = (b.dataset.f === 'all' || d.dataset.verdict === b.dataset.f) ? '' : 'none';
      });
    });
  });
  var judged = document.getElementById('judged-only');
  judged.addEventListener('change', function () {
    document.querySelectorAll('table.matrix tr[data-verdict]').forEach(function (r) {
      var v = r.dataset.verdict;
      r.style.display = (judged.checked && (v === 'untested' || v === 'not-run')) ? 'none' : '';
    });
  });
  document.querySelectorAll('.filters button[data-open]').forEach(function (b) {
    b.addEventListener('click', function () {
      document.querySelectorAll('details.test').forEach(function (d) { d.open = b.dataset.open === '1'; });
    });
  });
})();
</script>
</body>
</html>
"""
