# ruff: noqa: E501 — HTML lines read better whole than wrapped to Python's width
"""The dossier's template: a printable document (A4), no script, every link relative to the
run directory, so the HTML, the PDF Chromium prints from it and the run's evidence travel
together."""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Conformance dossier — {{ dut.get('vendor', '?') }} {{ dut.get('model', '?') }}</title>
<style>
@page { size: A4; margin: 16mm 14mm; }
body { font: 11px/1.45 "Noto Sans CJK SC", "Noto Sans", system-ui, sans-serif; color: #212121;
       max-width: 190mm; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px;
     border-bottom: 1px solid #bbb; break-after: avoid; } h3 { font-size: 12px; margin: 10px 0 4px; break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr { break-inside: avoid; }
table.kv th { width: 48mm; }
.cover { border: 2px solid #333; padding: 10mm; margin-bottom: 8mm; }
.outcome { font-size: 18px; font-weight: 700; padding: 6px 10px; color: #fff; display: inline-block;
           -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.PASS { background: #2e7d32; } .FAIL { background: #c62828; } .ERROR, .INTERRUPTED { background: #6a1b9a; }
.SUBSET, .NOT-JUDGED { background: #ef6c00; }
.v-pass { color: #2e7d32; font-weight: 600; } .v-fail { color: #c62828; font-weight: 600; }
.v-error { color: #6a1b9a; } .v-inconclusive { color: #ef6c00; } .v-pending-operator { color: #1565c0; }
.muted { color: #666; } .mono { font-family: "Noto Sans Mono", monospace; font-size: 10px; word-break: break-all; }
pre { white-space: pre-wrap; font-size: 10px; background: #fafafa; border: 1px solid #eee; padding: 4px; }
table.signoff td { height: 14mm; }
.page-break { break-before: page; }
</style>
</head>
<body>
<div class="cover">
<h1>Conformance dossier</h1>
<p class="muted">carbon-emission online monitoring terminal · carbench {{ manifest.get('bench', {}).get('version', '?') }}</p>
<table class="kv">
<tr><th>Device under test</th><td><b>{{ dut.get('vendor', '?') }} {{ dut.get('model', '?') }}</b>{% if dut.get('version') %}, version {{ dut.get('version') }}{% endif %}{% if dut.get('serial') %}, serial {{ dut.get('serial') }}{% endif %}</td></tr>
<tr><th>Laboratory · operator</th><td>{{ lab.get('name') or '—' }} · {{ lab.get('operator') or '—' }}</td></tr>
<tr><th>Profile · clock</th><td>{{ manifest.get('profile', '?') }} · {{ manifest.get('clock', '?') }}</td></tr>
<tr><th>Run</th><td>{{ (manifest.get('started', '?')|string)[:19] }} – {{ (manifest.get('ended', '?')|string)[:19] }} UTC ({{ duration }})</td></tr>
<tr><th>Outcome</th><td><span class="outcome {{ outcome.get('label', '?') }}">{{ outcome.get('label', '?') }}</span> exit status {{ outcome.get('status', '?') }}{% if manifest.get('subset') %} · subset: {{ manifest.get('subset') }}{% endif %}</td></tr>
<tr><th>results.json</th><td class="mono">SM3 {{ integrity.get('sm3', 'unsigned') }}<br>SM2 key {{ integrity.get('fingerprint', '—') }}</td></tr>
</table>
</div>

<h2>1. Standards</h2>
<table>{% for sid, title, title_en in documents %}<tr><th style="width:22mm">{{ sid }}</th><td lang="zh">{{ title }}<div class="muted">{{ title_en }}</div></td></tr>{% endfor %}</table>

<h2>2. Implementation statement and test parameters</h2>
<p class="muted">The target file <span class="mono">{{ target.get('path', '') }}</span> (SM3 <span class="mono">{{ target.get('sm3', '') }}</span>), as the run read it.</p>
{% if statement %}<pre>{{ statement }}</pre>{% else %}<p>The run recorded no target file.</p>{% endif %}
{% for path, sm3, text in read_from %}<h3>Read from {{ path }}</h3><p class="muted mono">SM3 {{ sm3 }}</p><pre>{{ text }}</pre>{% endfor %}

<h2>3. Operator records and declarations</h2>
{% if records %}<table><tr><th>Case</th><th>Clause</th><th>Verdict</th><th>Record</th></tr>
{% for r in records %}<tr><td class="mono">{{ r.case }}</td><td>{{ r.clause }}</td><td class="v-{{ r.verdict }}">{{ r.verdict }}</td>
<td>{% if r.record %}{{ r.record.get('result') }} · {{ r.record.get('by') }} · {{ r.record.get('at') }}{% for k, v in r.record.get('values', {}).items() %}<br>{{ k }} = {{ v|join('…') }}{% endfor %}{% if r.record.get('note') %}<br><i>{{ r.record.get('note') }}</i>{% endif %}{% for e in r.evidence %}<br>evidence: <a href="{{ e }}">{{ e.rsplit('/', 1)[-1] }}</a>{% endfor %}{% else %}<span class="muted">{{ r.reason }}</span>{% endif %}</td></tr>{% endfor %}
</table>{% else %}<p>No lab or declared clause was part of this run.</p>{% endif %}

<h2 class="page-break">4. Clause matrix</h2>
{% for s in standards %}<h3>{{ s.name }}</h3>
<table><tr><th style="width:26mm">Clause</th><th style="width:12mm">Level</th><th style="width:14mm">Class</th><th>Summary</th><th style="width:22mm">Verdict</th></tr>
{% for r in s.rows if r.verdict != 'untested' %}<tr><td class="mono">{{ r.id }}</td><td>{{ r.level }}</td><td>{{ r.testability }}</td><td>{{ r.summary }}{% if r.reason and r.verdict not in ('pass', 'untested') %}<div class="muted">{{ r.reason|truncate(300, True, ' …') }}</div>{% endif %}{% if r.partial %}<div><b>Not judged:</b> {{ r.partial }}</div>{% endif %}</td><td class="v-{{ r.verdict }}">{{ r.verdict }}{% if r.partial %} (partial){% endif %}</td></tr>{% endfor %}
</table>
{% if s.untested %}<p><b>Auto clauses no test judged ({{ s.untested|length }}):</b> {% for c in s.untested %}<span class="mono">{{ c.id }}</span>{% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
{% endfor %}
<p class="muted">The clauses of these standards this run judged; report.html lists the whole catalogue.</p>

<h2>5. Measurements</h2>
{% if measured %}<table><tr><th>Case</th><th>Test</th><th>Measurement</th><th>Value</th></tr>
{% for title, case, name, value, unit in measured %}<tr><td class="mono">{{ case }}</td><td>{{ title }}</td><td class="mono">{{ name }}</td><td>{{ value }} {{ unit }}</td></tr>{% endfor %}</table>{% else %}<p>No test recorded a measurement.</p>{% endif %}

{% if not_run %}<h2>6. Not run</h2>
<table><tr><th>Test</th><th>Clauses</th><th>Why</th></tr>{% for e in not_run %}<tr><td class="mono">{{ e.nodeid }}</td><td>{{ e.clauses|join(', ') }}</td><td>{{ e.why }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Sign-off</h2>
<table class="signoff"><tr><th style="width:30mm"></th><th>Name</th><th>Signature</th><th style="width:30mm">Date</th></tr>
<tr><th>Tested by</th><td>{{ lab.get('operator', '') }}</td><td></td><td></td></tr>
<tr><th>Reviewed by</th><td></td><td></td><td></td></tr>
<tr><th>Approved by</th><td></td><td></td><td></td></tr></table>

<h2>How to verify</h2>
<p>This dossier, its PDF and the run's <span class="mono">results.json</span> are signed with SM2 over their SM3 hash. In the run directory:</p>
<pre>carbench verify results.json --pubkey bench-signing-key.pub.pem</pre>
<p>checks the results, every evidence file, <span class="mono">report.html</span> and, with their <span class="mono">.sig</span> files beside them, <span class="mono">dossier/dossier.html</span> and <span class="mono">dossier/dossier.pdf</span>. The SM3 of <span class="mono">results.json</span> on the cover ties this dossier to that run.</p>
</body>
</html>
"""
