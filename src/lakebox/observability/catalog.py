"""`lakebox catalog --export DIR`: every dataset of the warehouse as a static site that opens
offline (plain HTML, relative links, no script): columns and types, row counts now and per
run (`ops.table_stats`), row-count anomalies, the gate's latest checks of a raw table, and
lineage at table and column level to click through."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.observability.lineage.columns import ColumnGraph
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

SCHEMAS = ("raw", "staging", "analytics", "ml")
_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}.flag{color:#b00}")


def page_name(table: str) -> str:
    return f"{table}.html"


def export_catalog(settings: Settings, wh: Warehouse, out: Path) -> list[Path]:
    """Write index.html and a page per dataset into `out`; the files written."""
    from lakebox.observability.anomalies import ensure_tables
    from lakebox.observability.lineage.columns import column_graph

    ensure_tables(wh)
    graph = column_graph(settings, wh)
    tables = sorted(t for t in graph.columns if t.split(".", 1)[0] in SCHEMAS)
    types = {(f"{s}.{t}", c): str(k) for s, t, c, k in wh.query(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_schema in ('raw', 'staging', 'analytics', 'ml')")}
    history: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for dataset, run_id, rows, day in wh.query(
            "select dataset, run_id, row_count, run_day from ops.table_stats where kind in ('raw', 'mart') "
            "order by recorded_at desc"):
        history[dataset].append((run_id, int(rows), str(day)))
    anomalies: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for dataset, run_id, detail in wh.query("select dataset, run_id, detail from ops.anomalies order by detected_at desc"):
        anomalies[dataset].append((run_id, detail))
    checks: dict[str, list[tuple[str, str | None, bool, int]]] = defaultdict(list)
    for source, check, column, passed, failing in wh.query(
            "select source, check_name, column_name, passed, failing_rows from ops.dq_results d where run_id = "
            "(select max(run_id) from ops.dq_results e where e.source = d.source) order by check_name, column_name"):
        checks[f"raw.{source}"].append((check, column, bool(passed), int(failing)))
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "index.html"]
    written[0].write_text(_index(tables, history))
    for table in tables:
        path = out / page_name(table)
        path.write_text(_dataset_page(table, graph, types, history[table], anomalies[table], checks[table]))
        written.append(path)
    return written


def _doc(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")


def _link(table: str, column: str | None = None) -> str:
    anchor = f"#{html.escape(column)}" if column else ""
    label = f"{table}.{column}" if column else table
    return f"<a href='{html.escape(page_name(table))}{anchor}'>{html.escape(label)}</a>"


def _index(tables: list[str], history: dict[str, list[tuple[str, int, str]]]) -> str:
    rows = "".join(f"<tr><td>{_link(t)}</td><td>{t.split('.', 1)[0]}</td>"
                   f"<td>{history[t][0][1] if history.get(t) else ''}</td></tr>" for t in tables)
    return _doc("lakebox catalog", "<h1>lakebox catalog</h1><table><tr><th>dataset</th><th>layer</th>"
                f"<th>rows (last run)</th></tr>{rows}</table>")


def _dataset_page(table: str, graph: ColumnGraph, types: dict[tuple[str, str], str],
                  history: list[tuple[str, int, str]], anomalies: list[tuple[str, str]],
                  checks: list[tuple[str, str | None, bool, int]]) -> str:
    parts = [f"<p><a href='index.html'>catalog</a></p><h1>{html.escape(table)}</h1>"]
    ups = sorted({s[0] for c in graph.columns.get(table, []) for s, _ in graph.upstream.get((table, c), [])})
    downs = sorted({d[0] for c in graph.columns.get(table, []) for d, _ in graph.downstream.get((table, c), [])})
    parts.append("<h2>Lineage</h2><p>upstream: " + (", ".join(map(_link, ups)) or "none") +
                 "</p><p>downstream: " + (", ".join(map(_link, downs)) or "none") + "</p>")
    rows = []
    for column in graph.columns.get(table, []):
        came = ", ".join(f"{_link(t, c)} ({k})" for (t, c), k in sorted(graph.upstream.get((table, column), [])))
        went = ", ".join(f"{_link(t, c)} ({k})" for (t, c), k in sorted(graph.downstream.get((table, column), [])))
        rows.append(f"<tr id='{html.escape(column)}'><td>{html.escape(column)}</td>"
                    f"<td>{html.escape(types.get((table, column), ''))}</td><td>{came}</td><td>{went}</td></tr>")
    parts.append("<h2>Columns</h2><table><tr><th>column</th><th>type</th><th>from</th><th>into</th></tr>"
                 + "".join(rows) + "</table>")
    if checks:
        parts.append("<h2>Latest checks</h2><table><tr><th>check</th><th>column</th><th>result</th></tr>" + "".join(
            f"<tr><td>{html.escape(c)}</td><td>{html.escape(col or '')}</td>"
            f"<td>{'passed' if ok else f'<span class=flag>failed: {n} row(s)</span>'}</td></tr>"
            for c, col, ok, n in checks) + "</table>")
    if anomalies:
        parts.append("<h2>Row-count anomalies</h2><ul>" + "".join(
            f"<li class=flag>{html.escape(run)}: {html.escape(d)}</li>" for run, d in anomalies) + "</ul>")
    if history:
        parts.append("<h2>Rows per run</h2><table><tr><th>run</th><th>day</th><th>rows</th></tr>" + "".join(
            f"<tr><td>{html.escape(r)}</td><td>{d}</td><td>{n}</td></tr>" for r, n, d in history[:50]) + "</table>")
    return _doc(table, "".join(parts))
