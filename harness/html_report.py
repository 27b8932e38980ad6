"""One self-contained HTML page per run: tables, charts inline, environment, bases, failures.

Pure: a record in, a string out. Charts are embedded as data URIs so the page needs no
network and can be mailed, archived or published as one file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from . import report

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}td.num{text-align:right}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.9rem}.failed{color:#b00;font-weight:bold}pre{background:#f7f7f7;padding:.6rem;overflow:auto}
"""


def _esc(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return html.escape(str(value))


def _table(df: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False))
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


CHARTS = (("sizes", "Final sizes"), ("composition", "Where the bytes go"),
          ("build_times", "Build time, every sample"), ("trends", "Trends over history"))


def _chart(run_dir: Path, name: str) -> str | None:
    """A chart the run directory holds, embedded as a data URI (the page stays one file)."""
    path = run_dir / f"{name}.png"
    if not path.exists():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _pairs(title: str, items: dict) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items.items())
    return f"<h3>{_esc(title)}</h3><table>{rows}</table>"


def _bases(record: dict) -> str:
    cols = ("requested", "status", "image_id", "digest", "size_bytes", "used_ref", "recipe",
            "standin_description")
    rows = [{c: (report.human_size(b.get(c)) if c == "size_bytes" and b.get(c) else b.get(c))
             for c in cols} for b in (record.get("bases") or {}).values()]
    return _table(pd.DataFrame(rows, columns=cols), "bases") if rows else "<p>No base images.</p>"


def _failures(record: dict) -> str:
    out = []
    for v in record.get("variants", []):
        if v.get("status") == "ok":
            continue
        tail = "\n".join(v.get("log_tail") or [])
        out.append(f'<h3 class="failed">{_esc(v["name"])}: {_esc(v.get("error") or v.get("status"))}</h3>'
                   + (f"<pre>{_esc(tail)}</pre>" if tail else ""))
    return "".join(out) or "<p>None: every variant was built and measured.</p>"


def render(record: dict, run_dir: Path) -> str:
    """The whole page as a string, with the charts already written to `run_dir`."""
    df = report.frame(record)
    summary = report.summary_table(df) if not df.empty else pd.DataFrame()
    if not summary.empty:  # Markdown emphasis means nothing in HTML
        summary["Final Size"] = summary["Final Size"].str.replace("**", "", regex=False)
    contents = report.contents_table(df) if not df.empty else None
    machine = record.get("machine") or {}
    git = (record.get("harness") or {}).get("git") or {}
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in report.standin_notes(record))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Dockerfile variants — run {_esc(record.get('run_id'))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Which Dockerfile should I ship? Run {_esc(record.get('run_id'))}</h1>",
        "<h2>Summary</h2>", _table(summary, "summary"),
        f'<p class="note">{_esc(report.SIZE_UNIT_NOTE)}</p>', notes,
    ]
    for name, title in CHARTS:
        uri = _chart(run_dir, name)
        if uri:
            parts += [f"<h2>{_esc(title)}</h2>", f'<img alt="{_esc(title)}" src="{uri}">']
    if contents is not None:
        parts += ["<h2>What ships in each image</h2>", _table(contents, "contents")]
    parts += [
        "<h2>Base images</h2>", _bases(record),
        "<h2>Failures</h2>", _failures(record),
        "<h2>Environment</h2>",
        _pairs("Run", {"run id": record.get("run_id"), "started (UTC)": record.get("created_utc"),
                       "finished (UTC)": record.get("finished_utc"),
                       "git commit": git.get("commit"), "dirty": git.get("dirty"),
                       "harness": (record.get("harness") or {}).get("version"),
                       **(record.get("settings") or {})}),
        _pairs("Engine", record.get("engine") or {}),
        _pairs("Machine", machine),
        "<h2>Raw files</h2><ul>",
        *(f'<li><a href="{name}">{name}</a></li>' for name in ("results.json", "results.csv", "table.md", "sizes.png", "sizes.svg")),
        "</ul>",
        # Lets a headless browser (and the tests) tell that every embedded image decoded.
        "<script>addEventListener('load',()=>{const i=[...document.images];"
        "document.body.dataset.imagesTotal=i.length;"
        "document.body.dataset.imagesLoaded=i.filter(x=>x.complete&&x.naturalWidth>0).length;});</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
