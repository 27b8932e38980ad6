"""One self-contained HTML page per run: `results/<run>/index.html`.

The summary table (the same rows as table.md), build-time statistics per variant x builder x
scenario with what the cache buys, the build context, shipping (registry) and runtime
figures, what ships in each image, its security posture and where its bytes go (with a
per-layer table per variant), every chart, the base images as they were resolved, failures
with the end of their build or container log, and the environment of the run. Charts
are embedded as PNG data URIs and the CSS is inline, so the page needs no network: it can be
published, mailed or archived as one file. Its Content-Security-Policy forbids loading
anything from elsewhere. Every piece of text from the record is escaped.

`render` is pure (a string out); harness.report.writer draws the charts once, saves them
beside the page (PNG and SVG) and writes index.html with them.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from harness.analysis.sizes import engine_label
from harness.model import FAILED, FAILED_AT_RUNTIME, RUNNING, Run, VariantResult
from harness.report import (
    build_tables,
    charts,
    engines,
    environment,
    formatting,
    image_tables,
    verdict,
)
from harness.report import markdown as report
from harness.report.units import human_size
from harness.store import RESULTS_FILE

INDEX = "index.html"
RAW_FILES = (RESULTS_FILE, "results.csv", build_tables.BUILD_TIMES_CSV, "table.md", "report.md")

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;--bad:#b42318;--accent:#4c72b0}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
 margin:0 auto;max-width:1260px;padding:1.5rem 1.5rem 4rem}
header{border-bottom:3px solid var(--accent);margin-bottom:1rem}
h1{font-size:1.6rem;margin:.2rem 0 .3rem}h2{font-size:1.2rem;margin:2.2rem 0 .6rem;
 padding-bottom:.25rem;border-bottom:1px solid var(--line)}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:var(--muted);margin:.2rem 0 .8rem}.meta span+span:before{content:" · "}
nav a{margin-right:1rem}a{color:#0969da}
table{border-collapse:collapse;margin:.4rem 0 .8rem;font-size:.92rem}
th,td{border:1px solid var(--line);padding:.35rem .65rem;text-align:left;vertical-align:top}
thead th{background:var(--head);position:sticky;top:0}
tbody tr:nth-child(even){background:#fbfcfd}
table.kv th{background:var(--head);font-weight:600;white-space:nowrap}
#summary td:nth-child(n+3){text-align:right;white-space:nowrap}
#summary td:first-child{font-weight:600}
.note{color:var(--muted);font-size:.88rem;margin:.3rem 0}
.failed{color:var(--bad);font-weight:600}
figure{margin:.6rem 0 1.6rem}figure img{display:block;max-width:100%;height:auto;
 border:1px solid var(--line);border-radius:4px}
figcaption{color:var(--muted);font-size:.88rem;margin-top:.35rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.86em;
 background:#f2f4f7;padding:.05rem .3rem;border-radius:3px}
pre{background:#0d1117;color:#e6edf3;padding:.8rem 1rem;border-radius:6px;overflow:auto;
 font-size:.82rem;line-height:1.4;max-height:28rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:0 1.5rem}
.grid>div{min-width:0}.grid table{width:100%}.grid td{overflow-wrap:anywhere}
#bases td{overflow-wrap:anywhere}#bases td:nth-child(9){min-width:14rem}.wrap{overflow-x:auto}
table.figures td{white-space:nowrap}
table.figures td.text{white-space:normal;min-width:8rem;overflow-wrap:anywhere}
tr.noisy td{background:#fff8c5}tr.failed td{color:var(--bad)}
ul.warn li{color:#7d4e00}ul.lines{margin:.3rem 0 .8rem;padding-left:1.4rem}
.statement{font-weight:600;margin:.4rem 0}
details{margin:.3rem 0}summary{cursor:pointer;font-weight:600}
.lead{display:grid;grid-template-columns:2fr 3fr;gap:0 1.5rem;align-items:start}
@media (max-width:1000px){.lead{grid-template-columns:1fr}}
.lead>*{min-width:0}.lead figure{margin-top:1rem}.lead figure h3{display:none}
#verdict{background:#f0f6ff;border:1px solid #b6d4fe;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
#verdict .answer{font-size:1.1rem;font-weight:600;margin:.2rem 0 .5rem}
table.verdict th{background:transparent;font-weight:600}table.verdict td:last-child{white-space:nowrap}
"""

# Marks the <body> once the page has loaded: how many images it has and how many decoded,
# how many rows the summary table has (and the engine tables, whether the engines' chart
# decoded), where the verdict and the first chart end (px from
# the top) and which tables are wider than the page's column (what a headless browser, and
# the tests, read).
LOAD_SCRIPT = (
    "addEventListener('load',()=>{const i=[...document.images],b=document.body.dataset;"
    "const end=e=>e?Math.round(e.getBoundingClientRect().bottom+scrollY):-1;"
    "const col=document.body.clientWidth-parseFloat(getComputedStyle(document.body).paddingLeft)"
    "-parseFloat(getComputedStyle(document.body).paddingRight);"
    "b.imagesTotal=i.length;b.imagesLoaded=i.filter(x=>x.complete&&x.naturalWidth>0).length;"
    "b.summaryRows=document.querySelectorAll('#summary tbody tr').length;"
    "b.engineRows=document.querySelectorAll('#engine-comparison tbody tr').length;"
    "b.provenanceRows=document.querySelectorAll('#provenance tbody tr').length;"
    "const ec=document.querySelector('#chart-engines img');"
    "b.engineChart=ec&&ec.complete&&ec.naturalWidth>0?'1':'0';"
    "b.verdictEnd=end(document.getElementById('verdict'));"
    "b.firstChartEnd=end(document.querySelector('figure img'));"
    "b.column=Math.round(col);"
    "b.wideTables=[...document.querySelectorAll('table')].filter(t=>t.offsetWidth>col+1)"
    ".map(t=>t.id||t.className||'table').join(' ');b.ready='1';});")

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Chart:
    name: str  # file stem in the run directory
    title: str
    caption: str
    draw: Callable  # (run, history entries) -> Figure | None


# Each chart gets the whole run; those keyed by variant draw the first engine's rows of a
# run that measured every variant on several engines (Run.primary).
CHARTS = (
    Chart("sizes", "Final image size",
          "Uncompressed size per variant, as docker images shows it, and the share saved "
          "against the first variant; the compressed size beside it where it is known.",
          lambda run, entries: charts.sizes(run.primary())),
    Chart("composition", "Where the bytes go",
          "Each final image split into its runtime base image, dependencies (node_modules), "
          "application output and everything else.",
          lambda run, entries: charts.composition(run.primary())),
    Chart("build_times", "Build time, every sample",
          "Each dot is one timed build; the box spans the middle half of the samples and its "
          "line is the median.",
          lambda run, entries: charts.build_times(run.primary())),
    Chart("engines", "Size on each engine",
          "Each variant's size on every engine it was measured on: the bar is the files in "
          "its layers (the same definition everywhere), the tick what that engine's own "
          "docker images shows.",
          lambda run, entries: engines.chart(run)),
    Chart("trends", "Trends over the history",
          "Size and median cold build time of each variant in every run up to this one; "
          "triangles mark a changed base image, squares a changed Dockerfile.",
          lambda run, entries: charts.trends(entries) if entries else None),
)


# ---------------------------------------------------------------------------- text

def esc(value) -> str:
    """Text for HTML: escaped; None and NaN as an en dash."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(esc(v) for v in value) or "–"
    return html.escape(str(value))


def inline_md(text: str) -> str:
    """The little Markdown report/markdown.py writes (`code`, **bold**), as escaped HTML."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _short_id(value) -> str:
    if not value:
        return "–"
    text = str(value)
    short = text.split(":", 1)[-1][:12]
    return f'<code title="{html.escape(text)}">{html.escape(short)}</code>'


def _kv(title: str | None, items: dict, table_id: str | None = None) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v if isinstance(v, _Html) else esc(v)}</td></tr>"
                   for k, v in items.items())
    head = f"<h3>{esc(title)}</h3>" if title else ""
    ident = f' id="{table_id}"' if table_id else ""
    return f'<div>{head}<table class="kv"{ident}><tbody>{rows}</tbody></table></div>'


class _Html(str):
    """A cell value that is already HTML (escaped where it came from the record)."""


# ---------------------------------------------------------------------------- sections

def verdict_html(run: Run) -> str:
    """The answer first: the variant to ship and why, then the best at each thing."""
    v = verdict.verdict(run)
    rows = "".join(f"<tr><th>{esc(f.what)}</th><td>{esc(f.label)}</td><td>{esc(f.value)}</td></tr>"
                   for f in v.findings)
    table = f'<table class="verdict">{rows}</table>' if rows else ""
    return f'<section id="verdict"><p class="answer">{esc(v.why)}</p>{table}</section>'


def summary_html(run: Run) -> str:
    """The summary table: `report.summary_table` rendered by pandas, escaped."""
    df = report.frame(run)
    if df.empty:
        return "<p>No variants were measured.</p>"
    table = report.summary_table(df)
    table["Final Size"] = table["Final Size"].str.replace("**", "", regex=False)
    body = table.to_html(index=False, escape=True, border=0, table_id="summary",
                         classes="summary", na_rep="–", justify="left")
    # A failed variant's size cell in red (the cell's text is exactly "failed"), and the
    # size of one that failed at runtime (built and measured, so its size stands).
    body = body.replace("<td>failed</td>", '<td class="failed">failed</td>')
    body = re.sub(r"<td>([^<]*) \(failed at runtime\)</td>",
                  r'<td>\1 <span class="failed">(failed at runtime)</span></td>', body)
    return f'<div class="wrap">{body}</div>'


def _notes(run: Run) -> str:
    lines = report.summary_notes(run) + report.standin_notes(run)
    return "".join(f'<p class="note">{inline_md(line)}</p>' for line in lines)


def figures_table(df, table_id: str, row_classes: list[str] | None = None,
                  text_columns: tuple[str, ...] = ()) -> str:
    """A DataFrame of text as an HTML table, every cell escaped; optional class per row."""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for i, values in enumerate(df.itertuples(index=False)):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(
            f'<td class="text">{esc(v)}</td>' if col in text_columns else f"<td>{esc(v)}</td>"
            for col, v in zip(df.columns, values))
        rows.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="wrap"><table id="{table_id}" class="figures"><thead><tr>{head}'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def lines_html(lines: list[str], list_class: str = "lines") -> str:
    """Report lines as HTML: runs of "- " lines become a list, others notes."""
    out, items = [], []

    def flush():
        if items:
            out.append(f'<ul class="{list_class}">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()
    for line in lines:
        if line.startswith("- "):
            items.append(inline_md(line[2:]))
        elif line:
            flush()
            out.append(f'<p class="note">{inline_md(line)}</p>')
    flush()
    return "".join(out)


def build_times_html(run: Run) -> str:
    table = build_tables.build_stats_table(run)
    if table is None:
        return ""
    rows = build_tables.build_rows(run)
    classes = ["noisy" if r.noisy else "failed" if r.state in ("error", "failed") else ""
               for r in rows]
    parts = ['<h2 id="build-times-section">Build time per variant, builder and scenario</h2>',
             figures_table(table, "build-times", classes, ("Variant", "Note")),
             (f'<p class="note">{inline_md(build_tables.BUILD_TIMES_NOTE)} Highlighted rows: MAD '
              f"above {build_tables.SPREAD_LIMIT:.0%} of the median.</p>")]
    warnings = build_tables.spread_warnings(run)
    if warnings:
        parts.append("<h3>Too noisy to read</h3>" + lines_html(warnings, "lines warn"))
    outliers = build_tables.outlier_lines(run)
    if outliers:
        parts.append("<h3>Outliers</h3>" + lines_html(outliers))
    cache = build_tables.cache_lines(run)
    if cache:
        parts.append("<h3>What the build cache buys</h3><p class=\"note\">Median ± MAD, against "
                     "the cold build with the same builder.</p>" + lines_html(cache))
    return "".join(parts)


def context_html(run: Run) -> str:
    table = build_tables.context_table(run)
    if table is None:
        return ""
    return ('<h2 id="context-section">Build context</h2>'
            + figures_table(table, "context", text_columns=("Variant", ".dockerignore saves"))
            + f'<p class="note">{inline_md(build_tables.CONTEXT_NOTE)}</p>')


def shipping_html(run: Run) -> str:
    table = image_tables.shipping_table(run)
    if table is None:
        return ""
    return ('<h2 id="shipping-section">Shipping</h2>'
            + figures_table(table, "shipping", text_columns=("Variant", "Note"))
            + f'<p class="note">{inline_md(image_tables.SHIPPING_NOTE)}</p>')


def runtime_html(run: Run) -> str:
    table = image_tables.runtime_table(run, body=True)
    if table is None:
        return ""
    statement = image_tables.runtime_statement(run)
    head = (f'<p class="statement">{inline_md(statement[0])}</p>' + lines_html(statement[1:])
            if statement else "")
    parts = ['<h2 id="runtime-section">Runtime</h2>', head,
             figures_table(table, "runtime", text_columns=(
                 "Variant", "Same GET / as the reference", "GET / body (start)")),
             f'<p class="note">{inline_md(image_tables.runtime_conditions(run))}</p>']
    for v, error, logs in image_tables.runtime_failures(run):
        parts.append(
            f'<h3 class="failed">{esc(formatting.variant_cell(v))} (<code>{esc(v.name)}</code>) '
            f"failed at runtime: {esc(error)}</h3>"
            '<p class="note">Its image was built and measured: its sizes stand.</p>'
            + (f'<p class="note">Last lines of its log:</p><pre>{esc(chr(10).join(logs))}</pre>'
               if logs else '<p class="note">No container log was recorded.</p>'))
    return "".join(parts)


def contents_html(run: Run) -> str:
    df = report.frame(run)
    table = report.contents_table(df) if not df.empty else None
    if table is None:
        return ""
    return ("<h2 id=\"contents\">What ships in each image</h2><div class=\"wrap\">"
            + table.to_html(index=False, escape=True, border=0, table_id="contents",
                            na_rep="–", justify="left")
            + '</div><p class="note">Read from the layers of <code>docker save</code>. Compressed: '
              "gzip level 6 of each layer, as a registry stores it (estimate). Wasted: bytes of "
              "files that a later layer overwrote or deleted.</p>")


def security_html(run: Run) -> str:
    df = report.frame(run)
    table = report.security_table(df) if not df.empty else None
    if table is None:
        return ""
    return ('<h2 id="security-section">Security posture</h2>'
            + figures_table(table, "security", text_columns=("Approach",))
            + f'<p class="note">{inline_md(report.SECURITY_NOTE)}</p>')


def bytes_html(run: Run) -> str:
    table = image_tables.bytes_table(run)
    if table is None:
        return ""
    parts = ['<h2 id="bytes-section">Where the bytes go</h2>',
             figures_table(table, "bytes", text_columns=("Variant", "By stage (above the base)")),
             f'<p class="note">{inline_md(image_tables.BYTES_NOTE)}</p>']
    for v in run.variants:
        layers = image_tables.layer_table(v) if formatting.is_measured(v) else None
        if layers is None:
            continue
        parts.append(
            f"<details><summary>{esc(formatting.variant_cell(v))}: {len(layers)} layers</summary>"
            + figures_table(layers, f"layers-{_ident(v.name)}",
                            text_columns=("Instruction",))
            + "</details>")
    return "".join(parts)


def _ident(value) -> str:
    """An HTML id from any text (the variant's name may hold anything)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(value or "x"))


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def charts_html(images: dict[str, bytes], run_dir: Path | None,
                names: tuple[str, ...] | None = None) -> str:
    """The charts drawn (those in `names`, when given) as figures; "" when there are none."""
    parts = []
    for chart in CHARTS:
        data = images.get(chart.name) if names is None or chart.name in names else None
        if not data:
            continue
        links = ""
        if run_dir is not None:
            files = [f"{chart.name}.{ext}" for ext in ("png", "svg")
                     if (Path(run_dir) / f"{chart.name}.{ext}").exists()]
            links = " ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
        parts.append(
            f'<figure id="chart-{chart.name}"><h3>{esc(chart.title)}</h3>'
            f'<img alt="{esc(chart.title)}" src="{_png_uri(data)}">'
            f"<figcaption>{esc(chart.caption)}{' Files: ' + links if links else ''}</figcaption>"
            "</figure>")
    return "".join(parts)


LEAD_CHART = "sizes"  # drawn beside the verdict, so the answer and its evidence open the page
ENGINES_CHART = "engines"  # in the Engines section, beside its table
OTHER_CHARTS = tuple(c.name for c in CHARTS if c.name not in (LEAD_CHART, ENGINES_CHART))


def lead_html(run: Run, images: dict[str, bytes], run_dir: Path | None) -> str:
    """The verdict beside the size chart: the first screen answers the question."""
    chart = charts_html(images, run_dir, (LEAD_CHART,))
    return f'<div class="lead">{verdict_html(run)}{chart}</div>' if chart else verdict_html(run)


def _other_charts_html(images: dict[str, bytes], run_dir: Path | None) -> str:
    """The Charts section: every chart but the one at the top."""
    if not images:
        return "<p>No charts.</p>"
    return (charts_html(images, run_dir, OTHER_CHARTS)
            or '<p class="note">The size chart is at the top.</p>')


def engines_html(run: Run, images: dict[str, bytes], run_dir: Path | None) -> str:
    """Several engines: side by side per variant (compare) and where each row was measured;
    "" for a run on one engine."""
    parts = []
    if engines.compared(run):
        parts += ['<h3 id="engines-compare">Engines side by side</h3>',
                  figures_table(engines.comparison_frame(run), "engine-comparison",
                                text_columns=("Variant", "Engine", "Product and store")),
                  f'<p class="note">{inline_md(engines.COMPARE_NOTE)}</p>',
                  '<p class="note">Where the engines disagree:</p>',
                  lines_html([f"- {line}" for line in engines.why_lines(run)]),
                  charts_html(images, run_dir, (ENGINES_CHART,))]
    if engines.has_provenance(run):
        parts += ['<h3 id="provenance">Where each row was measured</h3>',
                  figures_table(engines.provenance_frame(run), "provenance",
                                text_columns=("Engine", "Product and store", "Machine",
                                              "Variant", "Part of run")),
                  f'<p class="note">{inline_md(engines.PROVENANCE_NOTE)}</p>']
    if not parts:
        return ""
    return '<h2 id="engines-section">Engines</h2>' + "".join(parts)


BASE_COLUMNS = (("requested", "Requested"), ("status", "Status"), ("used_ref", "Used"),
                ("image_id", "Image id"), ("digest", "Digest"), ("size_bytes", "Size"),
                ("recipe", "Stand-in recipe"), ("node_version", "Node.js"),
                ("standin_description", "Stand-in description"), ("error", "Error"))


def bases_html(run: Run) -> str:
    if not run.bases:
        return "<p>No base images were resolved.</p>"
    head = "".join(f"<th>{esc(title)}</th>" for _, title in BASE_COLUMNS)
    rows = []
    for ref, res in run.bases.items():
        cells = []
        for key, _ in BASE_COLUMNS:  # fields of the model's BaseResolution
            value = getattr(res, key) if key != "requested" else (res.requested or ref)
            if key in ("image_id", "digest"):
                cells.append(_short_id(value))
            elif key == "size_bytes":
                cells.append(esc(human_size(value)) if value is not None else "–")
            elif key == "status" and res.standin:
                cells.append(f"{esc(value)}{formatting.STANDIN_MARK}")
            else:
                cells.append(esc(value))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<div class="wrap"><table id="bases"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _failed_heading(v: VariantResult, what: str) -> str:
    return (f'<h3 class="failed">{esc(formatting.label_of(v))} '
            f"(<code>{esc(v.name)}</code>): {esc(what)}</h3>")


def _log_html(lines: list[str], intro: str, missing: str = "") -> str:
    """The end of a log under a failure, or `missing` when none was recorded."""
    tail = "\n".join(lines)
    return f'<p class="note">{intro}</p><pre>{esc(tail)}</pre>' if tail else missing


def _build_failures(run: Run) -> list[str]:
    """Variants that did not build, with the end of their build log."""
    return [_failed_heading(v, v.error or v.status)
            + _log_html(formatting.as_lines(v.log_tail), "Last lines of the build log:",
                        '<p class="note">No build log was recorded.</p>')
            for v in run.variants if v.status == FAILED]


def _runtime_failures(run: Run) -> list[str]:
    return [_failed_heading(v, f"failed at runtime: {error}")
            + '<p class="note">Its image was built and measured; its container log is under '
              '<a href="#runtime-section">Runtime</a>.</p>'
            for v, error, _ in image_tables.runtime_failures(run)]


def _other_build_failures(run: Run) -> list[str]:
    """Another builder's build, or a scenario's builds, that failed (the variant stands)."""
    out = []
    for row in build_tables.build_rows(run):
        if row.state not in ("failed", "error") or (row.state == "failed" and row.primary):
            continue
        what = "build" if row.state == "failed" else f"{row.scenario} builds"
        out.append(f'<h3 class="failed"><code>{esc(row.name)}</code>: the {esc(row.builder)} '
                   f"{esc(what)} failed: {esc(row.reason)}</h3>"
                   + _log_html(list(row.log_tail), "Last lines of the build log:"))
    return out


def failures_html(run: Run) -> str:
    out = _build_failures(run) + _runtime_failures(run) + _other_build_failures(run)
    warnings = [(v.name, w) for v in run.variants for w in v.warnings]
    if warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(
            f"<li><code>{esc(n)}</code>: {esc(w)}</li>" for n, w in warnings) + "</ul>")
    return "".join(out) or "<p>None: every variant was built and measured.</p>"


def environment_html(run: Run) -> str:
    """The run, its settings, the engine and the machine, in words and units."""
    return '<div class="grid">' + "".join(
        _kv(title, dict(items), f"env-{title.lower()}")
        for title, items in environment.sections(run)) + "</div>"


def files_html(run_dir: Path | None) -> str:
    names = list(RAW_FILES)
    if run_dir is not None:
        names += [f"{c.name}.{ext}" for c in CHARTS for ext in ("png", "svg")
                  if (Path(run_dir) / f"{c.name}.{ext}").exists()]
    return "<ul>" + "".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>'
                            for n in names) + "</ul>"


# ---------------------------------------------------------------------------- the page

def history_until(run: Run, entries) -> list:
    """The history entries of runs up to this one (a later run's figures do not belong)."""
    if not entries:
        return []
    try:
        until = dt.datetime.fromisoformat(run.created_utc)
    except (TypeError, ValueError):
        return list(entries)
    return [e for e in entries if e.when <= until]


def draw_images(run: Run, history_entries=None) -> dict[str, bytes]:
    """Every chart as PNG bytes, drawn in memory (nothing written)."""
    entries = history_until(run, history_entries)
    images = {}
    for chart in CHARTS:
        fig = chart.draw(run, entries)
        if fig is not None:
            images[chart.name] = charts.png_bytes(fig)
            plt.close(fig)
    return images


def _meta(run: Run) -> list[str]:
    """The line under the title: variants and failures, when, where, which engine, commit."""
    variants = run.variants
    names = run.engine_names()
    where = (esc(engine_label(run.engine)) if len(names) < 2 else
             f"{len(names)} engines: {esc(', '.join(names))}")
    failed = sum(v.status == FAILED for v in variants)
    at_runtime = sum(v.status == FAILED_AT_RUNTIME for v in variants)
    running = sum(v.status == RUNNING for v in variants)
    git = run.harness.git
    return [f"{len({v.name for v in variants})} variant(s)"
            + (f', <strong class="failed">{failed} failed</strong>' if failed else "")
            + (f', <strong class="failed">{at_runtime} failed at runtime</strong>' if at_runtime else "")
            + (f", <strong>{running} still running</strong>" if running else ""),
            f"started {esc(run.created_utc)}",
            f"on {esc(run.machine.hostname)} ({esc(run.machine.cpu_count)} CPUs)", where,
            f"commit {esc((git.commit or '')[:12] or None)}" + (" (dirty)" if git.dirty else "")]


def render(record: Run | dict, run_dir: Path | None, history_entries=None, *,
           images: dict[str, bytes] | None = None) -> str:
    """The whole page as a string. `images` (chart name -> PNG bytes) are embedded as they
    are; without them the charts are drawn from the run (and the history) in memory. An
    entry point: a results.json dict is read as the model."""
    full = formatting.run_of(record)
    if images is None:
        images = draw_images(full, history_entries)
    run = full.primary()  # the sections keyed by variant: one row per variant
    run_id = run.run_id
    meta = _meta(full)
    sections = [("engines-section", "Engines", engines_html(full, images, run_dir)),
                ("build-times-section", "Build times", build_times_html(run)),
                ("context-section", "Context", context_html(run)),
                ("shipping-section", "Shipping", shipping_html(run)),
                ("runtime-section", "Runtime", runtime_html(run)),
                ("contents", "Contents", contents_html(run)),
                ("security-section", "Security", security_html(run)),
                ("bytes-section", "Bytes", bytes_html(run))]
    nav = [("summary-section", "Summary", True), ("charts", "Charts", True), *sections,
           ("bases-section", "Base images", True), ("failures", "Failures", True),
           ("environment", "Environment", True), ("files", "Raw files", True)]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Dockerfile variants — run {esc(run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>Which Dockerfile should we ship? Run {esc(run_id)}</h1>",
        '<p class="meta">' + "".join(f"<span>{m}</span>" for m in meta) + "</p>",
        "<nav>" + "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title, text in nav
                          if text) + "</nav></header>",
        lead_html(run, images, run_dir),
        '<h2 id="summary-section">Summary</h2>', summary_html(run), _notes(run),
        '<h2 id="charts">Charts</h2>', _other_charts_html(images, run_dir),
        *(text for _, _, text in sections),
        '<h2 id="bases-section">Base images</h2>', bases_html(run),
        '<h2 id="failures">Failures</h2>', failures_html(run),
        '<h2 id="environment">Environment</h2>', environment_html(run),
        '<h2 id="files">Raw files</h2>', files_html(run_dir),
        f"<script>{LOAD_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
