"""The inventory report as one self-contained HTML page (no network, prints on A4)."""

from __future__ import annotations

import jinja2

from reference_terminal.accounting.report.build import CATEGORIES, InventoryReport

_TEMPLATE = r"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ r.title_zh }} — {{ r.enterprise.name }}</title>
<style>
  body { font: 13px/1.45 "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
         "PingFang SC", sans-serif; color: #1a1a1a; margin: 2em auto; max-width: 72em;
         padding: 0 1.5em; }
  h1 { font-size: 1.6em; margin-bottom: 0.1em; }
  h1 small { display: block; font-size: 0.6em; color: #555; font-weight: normal; }
  h2 { font-size: 1.2em; border-bottom: 2px solid #2d6a4f; padding-bottom: 0.2em;
       margin-top: 2em; }
  table { border-collapse: collapse; width: 100%; margin: 0.6em 0; }
  th, td { border: 1px solid #c8c8c8; padding: 0.25em 0.5em; vertical-align: top; }
  th { background: #eef5f0; text-align: left; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .kpi { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
  .kpi div { border: 1px solid #2d6a4f; border-radius: 4px; padding: 0.5em 1em; }
  .kpi b { display: block; font-size: 1.4em; }
  .warn { color: #9c4a00; } .bad { color: #b00020; font-weight: bold; } .ok { color: #2d6a4f; }
  .muted { color: #666; } code { font-size: 0.92em; }
  ul.tree { list-style: none; padding-left: 1.2em; } ul.tree li { margin: 0.15em 0; }
  @media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
</style>
</head>
<body>
<h1>{{ r.title_zh }}<small>{{ r.title }}</small></h1>
<p>{{ r.enterprise.name }} · 报告期 Period: <b>{{ r.span.label }}</b>
  ({{ r.span.start.strftime("%Y-%m-%d %H:%M") }} – {{ r.span.end.strftime("%Y-%m-%d %H:%M") }}
  UTC{{ r.span.start.strftime("%z")[:3] }}) · 编制日期 Issued: {{ r.issued }}</p>

<div class="kpi">
  <div>排放总量 Total<b>{{ r.fig(r.total) }}</b>tCO2</div>
  <div>范围一 Scope 1<b>{{ r.fig(r.scope1) }}</b>tCO2</div>
  <div>范围二 Scope 2<b>{{ r.fig(r.scope2) }}</b>tCO2</div>
  <div>生物质（单独报告）Biomass<b>{{ r.fig(r.biomass) }}</b>tCO2</div>
</div>

<h2>1 报告主体基本信息 Reporting entity</h2>
<table>
  <tr><th>名称 Name</th><td>{{ r.enterprise.name }}</td></tr>
  <tr><th>统一社会信用代码 Credit code</th><td>{{ r.enterprise.credit_code }}</td></tr>
  <tr><th>行业 Sector</th><td>{{ r.enterprise.sector }}</td></tr>
  <tr><th>地址 Address</th><td>{{ r.enterprise.address }}</td></tr>
  <tr><th>法定代表人 Legal representative</th><td>{{ r.enterprise.legal_representative }}</td></tr>
  <tr><th>联系人 Contact</th><td>{{ r.enterprise.contact }}</td></tr>
  <tr><th>核算方法 Methodology</th><td>{{ r.methodology or "emission-factor method" }}
    · 因子版本 Vintage: {{ r.vintage or "—" }}</td></tr>
</table>

<h2>2 核算边界 Accounting boundary</h2>
<p>{{ r.boundary }}</p>
<ul class="tree">
{%- for uid, uname, names in r.units %}
  <li>▣ <b>{{ uname }}</b> <span class="muted">({{ uid }})</span>
    <ul class="tree">
    {%- for name in names %}{% set s = sources[name] %}
      <li>◆ {{ s.name }}{% if s.label %} / {{ s.label }}{% endif %}
        <span class="muted">— {{ s.kind }}, scope {{ s.scope if s.scope else "apart" }};
        meters {{ s.meters | join(", ") }}</span></li>
    {%- endfor %}
    </ul></li>
{%- endfor %}
</ul>

<h2>3 温室气体排放量 Emissions</h2>
<table>
  <tr><th>类别 Category</th><th>范围 Scope</th><th>排放源 Sources</th><th class="n">tCO2</th></tr>
  {%- for c in r.categories %}
  <tr><td>{{ c.title_zh }}<br><span class="muted">{{ c.title }}</span></td>
    <td>{{ c.scope if c.scope else "—" }}</td><td>{{ c.sources | join(", ") }}</td>
    <td class="n">{{ r.fig(c.tco2) }}</td></tr>
  {%- endfor %}
  <tr><th colspan="3">范围一 Scope 1</th><td class="n">{{ r.fig(r.scope1) }}</td></tr>
  <tr><th colspan="3">范围二 Scope 2</th><td class="n">{{ r.fig(r.scope2) }}</td></tr>
  <tr><th colspan="3">排放总量 Total (scope 1 + scope 2)</th>
    <td class="n"><b>{{ r.fig(r.total) }}</b></td></tr>
  <tr><th colspan="3">生物质 CO2（不计入总量）Biomass CO2, not in the total</th>
    <td class="n">{{ r.fig(r.biomass) }}</td></tr>
</table>
{% if r.intensities %}
<table>
  <tr><th>排放强度 Intensity</th><th class="n">值 Value</th><th>单位 Unit</th>
    <th class="n">基数 Basis</th><th>计量器具 Meters</th></tr>
  {%- for i in r.intensities %}
  <tr><td>{{ i.title_zh }} / {{ i.title }}</td><td class="n">{{ r.fig(i.value, 6) }}</td>
    <td>{{ i.unit }}</td><td class="n">{{ r.fig(i.amount) }} {{ i.amount_unit }}</td>
    <td>{{ i.meters | join(", ") }}</td></tr>
  {%- endfor %}
</table>
{% endif %}
<table>
  <tr><th>比较 Comparison</th><th>基期 Base</th><th class="n">本期 tCO2</th>
    <th class="n">基期 tCO2</th><th class="n">变化 Change</th><th class="n">变化率 Rate</th></tr>
  {%- for c in r.comparisons %}
  <tr><td>{{ c.name_zh }} {{ c.name }}</td><td>{{ c.base_label }}</td>
    <td class="n">{{ r.fig(c.value) }}</td><td class="n">{{ r.fig(c.base) }}</td>
    <td class="n">{{ r.fig(c.change) }}</td><td class="n">{{ r.pct(c.ratio) }}</td></tr>
  {%- endfor %}
</table>

<h2>4 活动水平数据及来源 Activity data and their sources</h2>
<table>
  <tr><th>排放源 Source</th><th>核算单元 Unit</th><th class="n">活动量 Activity</th>
    <th class="n">活动数据 AD</th><th>计量器具 Meters</th><th class="n">数据完整率 Coverage</th>
    <th class="n">tCO2</th></tr>
  {%- for s in r.sources %}
  <tr><td>{{ s.name }}{% if s.label %}<br><span class="muted">{{ s.label }}</span>{% endif %}</td>
    <td>{{ s.accounting_unit }}</td>
    <td class="n">{{ r.fig(s.activity) }} {{ s.unit }}</td>
    <td class="n">{{ r.fig(s.activity_data) }} {{ s.activity_data_unit }}</td>
    <td>{{ s.meters | join(", ") }}</td>
    <td class="n {{ 'warn' if s.coverage < 1 else '' }}">{{ r.pct(s.coverage) }}</td>
    <td class="n">{{ r.fig(s.tco2) }}</td></tr>
  {%- endfor %}
</table>

<h2>5 排放因子数据及来源 Emission factors and their sources</h2>
<table>
  <tr><th>排放源 Source</th><th>参数 Parameter</th><th>值 Value</th><th>来源 Origin</th>
    <th>版本 Vintage</th><th>数据年份 Data year</th><th>出处 Reference</th></tr>
  {%- for f in r.factors %}
  <tr><td>{{ f.source }}</td><td>{{ f.parameter }}</td><td><code>{{ f.value }}</code></td>
    <td>{{ f.origin }}{% if f.factor %} ({{ f.factor }}){% endif %}</td>
    <td>{{ f.vintage or "—" }}</td><td>{{ f.data_year or "—" }}</td>
    <td>{{ f.reference }}{% if f.to_confirm %} <span class="warn">[待核对 to confirm]</span>
      {% endif %}</td></tr>
  {%- endfor %}
</table>
<table>
  <tr><th>排放源 Source</th><th>公式 Formula</th><th class="n">tCO2 per unit</th></tr>
  {%- for s in r.sources %}
  <tr><td>{{ s.name }}</td><td>{{ s.formula }}</td>
    <td class="n"><code>{{ r.fig(s.rate, 10) }}</code> /{{ s.unit }}</td></tr>
  {%- endfor %}
</table>

<h2>6 分期统计 By {{ r.breakdown_period.value }}</h2>
<table>
  <tr><th>期间 Period</th><th class="n">范围一 Scope 1</th><th class="n">范围二 Scope 2</th>
    <th class="n">总量 Total</th><th class="n">生物质 Biomass</th>
    {%- for i in r.intensities %}<th class="n">{{ i.unit }}</th>{% endfor %}</tr>
  {%- for p in r.breakdown %}
  <tr><td>{{ p.label }}</td><td class="n">{{ r.fig(p.scope1) }}</td>
    <td class="n">{{ r.fig(p.scope2) }}</td><td class="n">{{ r.fig(p.total) }}</td>
    <td class="n">{{ r.fig(p.biomass) }}</td>
    {%- for v in p.intensities %}<td class="n">{{ r.fig(v, 6) }}</td>{% endfor %}</tr>
  {%- endfor %}
</table>

<h2>7 计量器具台账 Meter ledger</h2>
<table>
  <tr><th>编号 ID</th><th>名称 Name</th><th>型号 / 编号 Model / serial</th><th>位置 Location</th>
    <th>准确度 Accuracy</th><th>级别 Level</th><th>频率 Frequency</th><th>检定 Calibrated</th>
    <th>有效期至 Due</th><th>状态 Status</th><th>用途 Feeds</th>
    <th class="n">本期计量 Period reading</th><th class="n">完整率 Coverage</th></tr>
  {%- for m in r.meters %}
  <tr><td>{{ m.id }}</td><td>{{ m.name }}</td><td>{{ m.model }} / {{ m.serial }}</td>
    <td>{{ m.location }}</td><td>{{ m.accuracy }}</td><td>{{ m.level or "—" }}</td>
    <td>{{ m.frequency }}</td><td>{{ m.calibrated or "—" }}</td>
    <td>{{ m.calibration_due or "—" }}</td>
    <td class="{{ {'overdue': 'bad', 'due soon': 'warn', 'unknown': 'warn'}.get(m.status, 'ok') }}">
      {{ m.status }}</td>
    <td>{{ m.feeds | join("; ") }}</td>
    <td class="n">{{ r.fig(m.activity) }} {{ m.unit }}</td>
    <td class="n">{{ r.pct(m.coverage) }}</td></tr>
  {%- endfor %}
</table>

<h2>8 数据溯源 Traceability</h2>
<table>
  <tr><th>数据项 Figure</th><th class="n">值 Value</th><th>来源 Derivation</th>
    <th>排放源 Sources</th><th>计量器具 Meters</th></tr>
  {%- for t in r.traces %}
  <tr><td>{{ t.figure }}</td><td class="n">{{ r.fig(t.value, 6 if t.unit != "tCO2" else None) }}
    {{ t.unit }}</td><td>{{ t.derivation }}</td><td>{{ t.sources | join(", ") }}</td>
    <td>{{ t.meters | join(", ") }}</td></tr>
  {%- endfor %}
</table>

<h2>9 其他说明 Notes and reminders</h2>
{% if r.reminders %}<ul>{% for m in r.reminders %}<li class="warn">{{ m }}</li>{% endfor %}</ul>
{% else %}<p class="ok">No reminders.</p>{% endif %}
<ul>
  {%- for n in r.notes %}<li>{{ n }}</li>{% endfor %}
  <li>数据文件 Data: {{ r.data_origin or "—" }}{% if r.data_sm3 %}, SM3
    <code>{{ r.data_sm3 }}</code>{% endif %}</li>
</ul>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_COMPILED = _ENV.from_string(_TEMPLATE)


def render_html(report: InventoryReport) -> str:
    """The report as one HTML page (UTF-8, no external resources)."""
    return _COMPILED.render(
        r=report, sources={s.name: s for s in report.sources}, categories=CATEGORIES
    )
