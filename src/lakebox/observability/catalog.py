"""The catalog: every dataset of the warehouse with its dbt description, columns and types,
tests and their latest results, the gate's checks, row counts and freshness per run
(`ops.table_stats`), row-count anomalies, the owning pipeline, and lineage at table and
column level. `read_catalog` gathers it once; the dashboard's catalog page and
`lakebox catalog --export DIR` (a static site that opens offline: plain HTML, relative
links, no script) both show what it found."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.observability.lineage.columns import Column, ColumnGraph
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

SCHEMAS = ("raw", "staging", "analytics", "ml")
_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}.flag{color:#b00}")


@dataclass(frozen=True)
class Test:
    """A dbt test of the dataset, and how the pipeline's latest dbt build left it."""

    name: str  # the test's kind as written in the yml: not_null, accepted_values, ...
    column: str | None
    result: str  # passed | failed | unknown | not run yet
    detail: str  # the run it is from, and dbt's message when it failed


@dataclass(frozen=True)
class Check:
    """A quality-gate check of a raw table in its latest run."""

    name: str
    column: str | None
    passed: bool
    failing_rows: int


@dataclass(frozen=True)
class Count:
    run_id: str
    rows: int
    day: str
    recorded_at: str


@dataclass
class Dataset:
    name: str  # schema.table
    pipeline: str | None = None
    description: str = ""
    columns: list[tuple[str, str, str]] = field(default_factory=list)  # (column, type, description)
    tests: list[Test] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    history: list[Count] = field(default_factory=list)  # newest first
    anomalies: list[tuple[str, str]] = field(default_factory=list)  # (run id, why), newest first

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass
class Catalog:
    datasets: dict[str, Dataset]
    graph: ColumnGraph

    def upstream(self, table: str) -> list[str]:
        """The tables `table`'s columns are made of (directly, or by filtering/grouping/joining)."""
        direct = {s[0] for c in self.graph.columns.get(table, []) for s, _ in self.graph.upstream.get((table, c), [])}
        return sorted(direct | {t for (t, _), _ in self.graph.indirect.get(table, [])})

    def downstream(self, table: str) -> list[str]:
        return sorted({t for t in self.datasets if table in self.upstream(t)})

    def column_edges(self, column: Column, up: bool) -> list[tuple[Column, str]]:
        edges = self.graph.upstream if up else self.graph.downstream
        return sorted(edges.get(column, []))


def page_name(table: str) -> str:
    return f"{table}.html"


def read_catalog(settings: Settings, wh: Warehouse, read_only: bool = False) -> Catalog:
    """Everything the catalog shows, from the warehouse, the dbt project's yml and dbt's
    compiled SQL. A read-only reader (the dashboard) of a warehouse no run has written yet
    finds no ops tables: the catalog then shows no history."""
    from lakebox.observability.anomalies import ensure_tables
    from lakebox.observability.lineage.columns import column_graph, warehouse_columns

    ops = ("ops.table_stats", "ops.anomalies", "ops.dq_results", "ops.stage_runs")
    if not read_only:
        ensure_tables(wh)
    have = {t for t in ops if _present(wh, t)}

    def rows(table: str, sql: str) -> list[tuple[Any, ...]]:
        return wh.query(sql) if table in have else []

    known = warehouse_columns(wh)
    graph = column_graph(settings, wh, known)
    docs = _dbt_docs(settings.home / "dbt" / "project")
    datasets = {t: Dataset(t) for t in sorted(graph.columns)}
    for name, ds in datasets.items():
        doc = docs.get(name, {})
        ds.pipeline = doc.get("pipeline")
        ds.description = doc.get("description", "")
        described = doc.get("columns", {})
        ds.columns = [(c, k, described.get(c, "")) for c, k in known.get(name, [])]
    for dataset, pipeline, run_id, count, day, at in rows(
            "ops.table_stats", "select dataset, pipeline, run_id, row_count, run_day, recorded_at from ops.table_stats "
            "where kind in ('raw', 'mart') order by recorded_at desc"):
        if dataset in datasets:
            datasets[dataset].pipeline = datasets[dataset].pipeline or pipeline
            datasets[dataset].history.append(Count(run_id, int(count), str(day), f"{at:%Y-%m-%d %H:%M:%S}"))
    for dataset, run_id, detail in rows(
            "ops.anomalies", "select dataset, run_id, detail from ops.anomalies order by detected_at desc"):
        if dataset in datasets:
            datasets[dataset].anomalies.append((run_id, detail))
    for source, check, column, passed, failing in rows(
            "ops.dq_results", "select source, check_name, column_name, passed, failing_rows from ops.dq_results d where run_id = "
            "(select max(run_id) from ops.dq_results e where e.source = d.source) order by check_name, column_name"):
        for name in (f"raw.{source}", *(t for t in datasets if t.startswith(f"raw.{source}_"))):
            if name in datasets:
                datasets[name].checks.append(Check(check, column, bool(passed), int(failing)))
    builds = _latest_builds(wh) if "ops.stage_runs" in have else {}
    for name, ds in datasets.items():
        ds.tests = [_test_result(name, kind, column, builds.get(ds.pipeline or ""))
                    for kind, column in docs.get(name, {}).get("tests", [])]
    return Catalog(datasets, graph)


def _present(wh: Warehouse, table: str) -> bool:
    try:
        wh.query_arrow(f"select * from {table} limit 0")
    except Exception:  # noqa: BLE001 - each engine says "no such table" its own way
        return False
    return True


def _dbt_docs(project: Path) -> dict[str, dict[str, Any]]:
    """{schema.table: {pipeline, description, columns: {column: description}, tests: [(kind, column)]}}
    from the yml of every pipeline's models and sources (the project dbt builds from)."""
    import yaml

    schema_of = {"staging": "staging", "marts": "analytics", "ml": "ml"}
    found: dict[str, dict[str, Any]] = {}
    for path in sorted([*project.glob("models/*/**/*.yml"), *project.glob("sources/**/*.yml")]):
        pipeline = path.relative_to(project).parts[1] if len(path.relative_to(project).parts) > 2 else None
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # `lakebox check` names a broken yml; the catalog shows what it can
        folder = path.parent.name
        for model in doc.get("models") or []:
            if folder in schema_of and isinstance(model, dict) and model.get("name"):
                found[f"{schema_of[folder]}.{model['name']}"] = _described(model, pipeline)
        for source in doc.get("sources") or []:
            for table in (source.get("tables") or []) if isinstance(source, dict) else []:
                if isinstance(table, dict) and table.get("name"):
                    entry = _described(table, pipeline)
                    entry["description"] = entry["description"] or " ".join(str(source.get("description", "")).split())
                    found[f"{source.get('schema', 'raw')}.{table.get('identifier', table['name'])}"] = entry
    return found


def _described(node: dict[str, Any], pipeline: str | None) -> dict[str, Any]:
    columns = [c for c in node.get("columns") or [] if isinstance(c, dict) and c.get("name")]
    tests: list[tuple[str, str | None]] = [(kind, None) for kind in _test_kinds(node)]
    tests += [(kind, str(c["name"])) for c in columns for kind in _test_kinds(c)]
    return {"pipeline": pipeline, "description": " ".join(str(node.get("description", "")).split()),
            "columns": {str(c["name"]): " ".join(str(c.get("description", "")).split()) for c in columns},
            "tests": tests}


def _test_kinds(node: dict[str, Any]) -> Iterator[str]:
    for test in [*(node.get("data_tests") or []), *(node.get("tests") or [])]:
        if isinstance(test, str):
            yield test
        elif isinstance(test, dict) and test:
            yield str(next(iter(test)))


def _latest_builds(wh: Warehouse) -> dict[str, tuple[str, str, str | None]]:
    """{pipeline: (run id, status, error)} of each pipeline's latest dbt build (its transform stage):
    dbt stops a build on a failed test, so a build that succeeded passed every test it ran."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for pipeline, run_id, status, error in wh.query(
            "select pipeline, run_id, status, error from ops.stage_runs where stage = 'transform' "
            "and status <> 'running' order by started_at"):
        found[pipeline] = (run_id, status, error)
    return found


def _test_result(table: str, kind: str, column: str | None, build: tuple[str, str, str | None] | None) -> Test:
    if build is None:
        return Test(kind, column, "not run yet", "no dbt build of this pipeline recorded")
    run_id, status, error = build
    if status == "success":
        return Test(kind, column, "passed", f"run {run_id}")
    prefix = f"test {kind}_{table.split('.', 1)[1]}"
    for line in (error or "").splitlines():
        line = line.strip()
        if line.startswith(prefix) and (column is None or f"_{column}" in line.split(":", 1)[0]
                                        or len(line.split(":", 1)[0]) > 60):
            return Test(kind, column, "failed", f"run {run_id}: {line.split(':', 1)[-1].strip()}")
    return Test(kind, column, "unknown", f"run {run_id}: the dbt build failed on other nodes before or around it")


def export_catalog(settings: Settings, wh: Warehouse, out: Path) -> list[Path]:
    """Write index.html and a page per dataset into `out`; the files written."""
    catalog = read_catalog(settings, wh)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "index.html"]
    written[0].write_text(_index(catalog))
    for table in catalog.datasets:
        path = out / page_name(table)
        path.write_text(_dataset_page(catalog, table))
        written.append(path)
    return written


def _doc(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")


def _link(table: str, column: str | None = None) -> str:
    anchor = f"#{html.escape(column)}" if column else ""
    label = f"{table}.{column}" if column else table
    return f"<a href='{html.escape(page_name(table))}{anchor}'>{html.escape(label)}</a>"


def _index(catalog: Catalog) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{_link(t)}</td><td>{d.layer}</td><td>{e(d.pipeline or '')}</td>"
                   f"<td>{d.history[0].rows if d.history else ''}</td><td>{e(d.description)}</td></tr>"
                   for t, d in catalog.datasets.items())
    return _doc("lakebox catalog", "<h1>lakebox catalog</h1><table><tr><th>dataset</th><th>layer</th>"
                f"<th>pipeline</th><th>rows (last run)</th><th>description</th></tr>{rows}</table>")


def _dataset_page(catalog: Catalog, table: str) -> str:
    e = html.escape
    ds = catalog.datasets[table]
    parts = [f"<p><a href='index.html'>catalog</a></p><h1>{e(table)}</h1>",
             f"<p>{e(ds.description)}</p>" if ds.description else "",
             f"<p>pipeline: {e(ds.pipeline)}</p>" if ds.pipeline else ""]
    parts.append("<h2>Lineage</h2><p>upstream: " + (", ".join(map(_link, catalog.upstream(table))) or "none") +
                 "</p><p>downstream: " + (", ".join(map(_link, catalog.downstream(table))) or "none") + "</p>")
    rows = []
    for column, kind, text in ds.columns:
        came = ", ".join(f"{_link(t, c)} ({k})" for (t, c), k in catalog.column_edges((table, column), up=True))
        went = ", ".join(f"{_link(t, c)} ({k})" for (t, c), k in catalog.column_edges((table, column), up=False))
        rows.append(f"<tr id='{e(column)}'><td>{e(column)}</td><td>{e(kind)}</td><td>{e(text)}</td>"
                    f"<td>{came}</td><td>{went}</td></tr>")
    parts.append("<h2>Columns</h2><table><tr><th>column</th><th>type</th><th>description</th><th>from</th>"
                 "<th>into</th></tr>" + "".join(rows) + "</table>")
    if ds.tests:
        parts.append("<h2>dbt tests</h2><table><tr><th>test</th><th>column</th><th>latest result</th></tr>" + "".join(
            f"<tr><td>{e(t.name)}</td><td>{e(t.column or '')}</td><td"
            f"{' class=flag' if t.result == 'failed' else ''}>{e(t.result)} ({e(t.detail)})</td></tr>"
            for t in ds.tests) + "</table>")
    if ds.checks:
        parts.append("<h2>Latest checks</h2><table><tr><th>check</th><th>column</th><th>result</th></tr>" + "".join(
            f"<tr><td>{e(c.name)}</td><td>{e(c.column or '')}</td>"
            f"<td>{'passed' if c.passed else f'<span class=flag>failed: {c.failing_rows} row(s)</span>'}</td></tr>"
            for c in ds.checks) + "</table>")
    if ds.anomalies:
        parts.append("<h2>Row-count anomalies</h2><ul>" + "".join(
            f"<li class=flag>{e(run)}: {e(d)}</li>" for run, d in ds.anomalies) + "</ul>")
    if ds.history:
        parts.append("<h2>Rows per run</h2><table><tr><th>run</th><th>day</th><th>recorded</th><th>rows</th></tr>"
                     + "".join(f"<tr><td>{e(c.run_id)}</td><td>{c.day}</td><td>{c.recorded_at}</td><td>{c.rows}</td>"
                               "</tr>" for c in ds.history[:50]) + "</table>")
    return _doc(table, "".join(parts))
