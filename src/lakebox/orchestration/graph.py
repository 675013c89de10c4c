"""A pipeline's assets and lineage, read from its spec and its dbt models, without Dagster.

source → raw → staging → marts → ml: the raw tables are the dbt sources of the pipeline's
model folder, the models are its `.sql` files (layer from the sub-folder, lineage from their
`ref()`/`source()` calls), the dbt tests come from its `schema.yml` files and the project's
singular tests, and stages after `transform` (other than `snapshot`) are ML steps built
from its marts. After a run, `evaluate` reads the run's own audit rows (ops.stage_runs,
ops.dq_results, ops.batches) to tell which assets it reached and how their checks went.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakebox.pipelines.spec import PipelineSpec
    from lakebox.runner import RunOutcome
    from lakebox.warehouse import Warehouse

SOURCE, RAW, STAGING, MARTS, ML = "source", "raw", "staging", "marts", "ml"
LAYERS = (STAGING, MARTS, ML)  # model sub-folders, in lineage order
GATE_CHECK, DBT_CHECK, QUARANTINE_CHECK = "quality_gate", "dbt_tests", "open_quarantine"
_REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")
_SOURCE = re.compile(r"""\bsource\(\s*['"](\w+)['"]\s*,\s*['"](\w+)['"]\s*\)""")
_CONFIG_SCHEMA = re.compile(r"""\bconfig\([^)]*\bschema\s*=\s*['"](\w+)['"]""")
_TABLE = re.compile(r"\b(\w+)\.(\w+)\b")
_LAYER_SCHEMA = {STAGING: "staging", MARTS: "analytics", ML: "ml"}
_OK = ("success", "partial")


@dataclass(frozen=True)
class Node:
    """One asset: `key` is (schema, table), or ("source", name) for what feeds a pipeline."""

    key: tuple[str, str]
    layer: str
    deps: tuple[tuple[str, str], ...] = ()
    tests: tuple[str, ...] = ()  # dbt tests guarding it
    description: str = ""
    stage: str = ""  # the lakebox stage that builds it

    @property
    def name(self) -> str:
        return ".".join(self.key)


@dataclass(frozen=True)
class PipelineGraph:
    name: str
    description: str
    file_fed: bool
    nodes: tuple[Node, ...]

    def layer(self, layer: str) -> list[Node]:
        return [n for n in self.nodes if n.layer == layer]

    @property
    def built(self) -> list[Node]:
        """What a run materializes (sources are external)."""
        return [n for n in self.nodes if n.layer != SOURCE]


@dataclass(frozen=True)
class CheckOutcome:
    node: tuple[str, str]
    check: str
    passed: bool
    detail: str
    failures: tuple[dict[str, Any], ...] = ()
    warning: bool = False  # a failure to look at, not one that stopped anything (open quarantine)


@dataclass
class RunAssets:
    """What one lakebox run reached: the assets it (re)built and its check outcomes."""

    outcome: RunOutcome
    materialized: list[Node] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)


def build_graph(spec: PipelineSpec) -> PipelineGraph:
    folder = _model_folder(spec)
    sources = [_source_node(spec, s) for s in spec.sources or (spec.name,)]
    raw, by_source = _raw_tables(folder, [s.key for s in sources], _load_stage(spec))
    for name, table in spec.dbt_sources:  # a declarative pipeline's resources: sources lakebox declares
        by_source[(spec.name, name)] = ("raw", table)
        raw.append(Node(("raw", table), RAW, tuple(s.key for s in sources), stage=_load_stage(spec),
                        description=f"the {name} resource as received, typed and batch-tagged"))
    tests = _dbt_tests(folder, Path(spec.folder) / "data_tests")
    models: list[Node] = []
    names: dict[str, tuple[str, str]] = {}
    for layer in LAYERS:
        for sql in sorted((folder / layer).rglob("*.sql")) if folder else []:
            configured = _CONFIG_SCHEMA.search(sql.read_text())
            schema = configured.group(1) if configured else _LAYER_SCHEMA[layer]
            names[sql.stem] = (schema, sql.stem)
    for layer in LAYERS:
        for sql in sorted((folder / layer).rglob("*.sql")) if folder else []:
            text = sql.read_text()
            deps = [names[r] for r in _REF.findall(text) if r in names]
            deps += [by_source[s] for s in _SOURCE.findall(text) if s in by_source]
            models.append(Node(names[sql.stem], layer, tuple(dict.fromkeys(deps)), tuple(tests.get(sql.stem, ())),
                               stage="transform"))
    models = _in_lineage_order(models)
    marts = [m.key for m in models if m.layer == MARTS] or [_table(m) for m in spec.marts]
    ml = _ml_models(spec, [n.key for n in raw + models], marts)
    return PipelineGraph(spec.name, spec.description, spec.waiting_input is not None,
                         tuple(sources + raw + models + ml))


def _source_node(spec: PipelineSpec, source: str) -> Node:
    """What feeds the pipeline, named for what it is (`retail_landing`, `orders_api`), so that
    it never shares a name with the raw table it lands in (`raw.orders`)."""
    if spec.waiting_input is not None:
        return Node((SOURCE, f"{source}_landing"), SOURCE, description=f"the files dropped in the {source} landing "
                    f"folder ($LAKEBOX_LANDING/{source}), read by the {_first_stage(spec)} stage",
                    stage=_first_stage(spec))
    return Node((SOURCE, f"{source}_api"), SOURCE, description=f"the {source} API, polled by the "
                f"{_first_stage(spec)} stage", stage=_first_stage(spec))


def evaluate(graph: PipelineGraph, outcome: RunOutcome, warehouse: Warehouse, sources: Sequence[str]) -> RunAssets:
    """The assets `outcome`'s run reached, and its gate and dbt test outcomes, from ops.*."""
    stages = {name: (status, rows_out) for name, status, _, _, rows_out in outcome.stages}
    result = RunAssets(outcome)
    for node in graph.built:
        if stages.get(node.stage, (None, 0))[0] in _OK:
            result.materialized.append(node)
    if graph.layer(RAW) and stages.get(_load_stage_of(graph)) is not None:
        result.checks += _gate_outcomes(graph, outcome, warehouse, sources)
    if graph.layer(RAW):
        result.checks += _quarantine_outcomes(graph, outcome, warehouse)
    transform = stages.get("transform")
    if transform is not None:
        result.checks += _dbt_outcomes(graph, transform[0], outcome.error or "")
    return result


# ------------------------------------------------------------------ reading the dbt project
def _model_folder(spec: PipelineSpec) -> Path | None:
    """The pipeline's models/ folder, when its selector is that folder (`path:models/<name>`)."""
    if spec.dbt_selector != f"path:models/{spec.name}" or not spec.folder:
        return None
    folder = Path(spec.folder) / "models"
    return folder if folder.is_dir() else None


def _yaml(path: Path) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    return yaml.safe_load(path.read_text()) or {}


def _raw_tables(
    folder: Path | None, sources: list[tuple[str, str]], stage: str
) -> tuple[list[Node], dict[tuple[str, str], tuple[str, str]]]:
    nodes: list[Node] = []
    by_source: dict[tuple[str, str], tuple[str, str]] = {}
    for path in sorted(folder.glob("*.yml")) if folder else []:
        for source in _yaml(path).get("sources", []) or []:
            schema = source.get("schema", source["name"])
            for table in source.get("tables", []) or []:
                key = (schema, table["name"])
                by_source[(source["name"], table["name"])] = key
                nodes.append(Node(key, RAW, tuple(sources), description=str(table.get("description", "")).strip(),
                                  stage=stage))
    return nodes, by_source


def _dbt_tests(folder: Path | None, singular: Path) -> dict[str, list[str]]:
    """model name -> its tests: `column: test` from schema.yml, and singular tests by file name."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.yml")) if folder else []:
        for model in _yaml(path).get("models", []) or []:
            names = [_test_name(t) for t in model.get("data_tests", model.get("tests", [])) or []]
            for column in model.get("columns", []) or []:
                names += [f"{column['name']}: {_test_name(t)}"
                          for t in column.get("data_tests", column.get("tests", [])) or []]
            if names:
                found.setdefault(model["name"], []).extend(names)
    for sql in sorted(singular.glob("*.sql")) if singular.is_dir() else []:
        for model in set(_REF.findall(sql.read_text())):
            found.setdefault(model, []).append(sql.stem)
    return found


def _in_lineage_order(models: list[Node]) -> list[Node]:
    """Each model after the models it reads (Dagster takes a multi-asset's results in that order)."""
    from graphlib import TopologicalSorter

    by_key = {m.key: m for m in models}
    order = TopologicalSorter({m.key: [d for d in m.deps if d in by_key] for m in models}).static_order()
    return [by_key[k] for k in order]


def _test_name(test: object) -> str:
    return next(iter(test)) if isinstance(test, Mapping) else str(test)


def _table(name: str) -> tuple[str, str]:
    schema, _, table = name.partition(".")
    return schema, table


def _first_stage(spec: PipelineSpec) -> str:
    return spec.stages[0].name if spec.stages else ""


def _load_stage(spec: PipelineSpec) -> str:
    """The last stage before transform: the one whose success means raw tables are loaded."""
    names = [s.name for s in spec.stages]
    before = names[: names.index("transform")] if "transform" in names else names
    return before[-1] if before else ""


def _load_stage_of(graph: PipelineGraph) -> str:
    return graph.layer(RAW)[0].stage


def _ml_models(spec: PipelineSpec, tables: list[tuple[str, str]], marts: list[tuple[str, str]]) -> list[Node]:
    """The pipeline's ML models (spec.ml_models: one asset each, reading the tables its
    source_sql names), built by the stages after transform; without declared models, one
    asset per such stage."""
    names = [s.name for s in spec.stages]
    after = [n for n in names[names.index("transform") + 1:] if n != "snapshot"] if "transform" in names else []
    if not after:
        return []
    declared = [spec.resolve(ref) for ref in getattr(spec, "ml_models", ())]
    if not declared:
        return [Node((ML, f"{spec.name}_{stage}"), ML, tuple(marts), description=f"built by the {stage} stage",
                     stage=stage) for stage in after]
    nodes = []
    for model in declared:
        reads = [t for t in dict.fromkeys(_TABLE.findall(model.source_sql)) if t in tables]
        nodes.append(Node((ML, model.name.replace("-", "_")), ML, tuple(reads or marts), stage=after[-1],
                          description=f"the {model.name} model in MLflow ({', '.join(after)} stages), "
                                      f"predictions in {model.predictions_table}"))
    return nodes


# ------------------------------------------------------------------ check outcomes
def _gate_outcomes(
    graph: PipelineGraph, outcome: RunOutcome, warehouse: Warehouse, sources: Sequence[str]
) -> list[CheckOutcome]:
    """The gate's results for this run, per raw table: a table named `<source>_<kind>` gets the
    results of its kind's batches (ops.batches meta), any other table all of its source's."""
    marks = ", ".join("?" for _ in sources)
    rows = warehouse.query(
        f"select d.source, b.meta, d.check_name, d.column_name, d.passed, d.failing_rows, d.batch_id "
        f"from ops.dq_results d left join ops.batches b on b.batch_id = d.batch_id "
        f"where d.run_id = ? and d.source in ({marks})",
        [outcome.run_id, *sources],
    ) if sources else []
    import orjson

    results = []
    for node in graph.layer(RAW):
        mine = [r for r in rows if _belongs(node.key[1], r[0], r[1], orjson)]
        failed = [{"check": r[2], "column": r[3], "failing_rows": int(r[5] or 0), "batch_id": r[6]}
                  for r in mine if not r[4]]
        if failed:
            detail = f"{len(failed)} of {len(mine)} gate checks failed; the batches were quarantined"
        elif mine:
            detail = f"all {len(mine)} gate checks passed"
        else:
            detail = "no new batch to check in this run"
        results.append(CheckOutcome(node.key, GATE_CHECK, not failed, detail, tuple(failed)))
    return results


def _quarantine_outcomes(graph: PipelineGraph, outcome: RunOutcome, warehouse: Warehouse) -> list[CheckOutcome]:
    """Per raw table, the quarantined input of its source (and file kind) still open when
    the run ended: what makes lakebox call the run `partial`. A warning, not an error: the
    good input went on, and `lakebox quarantine` is where the items are dealt with."""
    import orjson

    items = {i.id: i for i in outcome.quarantined}
    marks = ", ".join("?" for _ in items)
    meta = dict(warehouse.query(
        f"select q.id, b.meta from ops.quarantine q left join ops.batches b on b.batch_id = q.batch_id "
        f"where q.id in ({marks})", list(items))) if items else {}
    results = []
    for node in graph.layer(RAW):
        mine = [i for i in items.values() if _belongs(node.key[1], i.source, meta.get(i.id), orjson)]
        failures = tuple({"item_id": i.id, "item": i.item, "batch_id": i.batch_id, "opened_run_id": i.opened_run_id}
                         for i in mine)
        detail = (f"{len(mine)} quarantined item(s) open: {', '.join(i.item for i in mine)[:500]}; "
                  "see `lakebox quarantine list`" if mine else "no quarantined input open")
        results.append(CheckOutcome(node.key, QUARANTINE_CHECK, not mine, detail, failures, warning=True))
    return results


def _belongs(table: str, source: str, meta: str | None, orjson: Any) -> bool:
    if not table.startswith(f"{source}_"):
        return True
    kind = (orjson.loads(meta) if meta else {}).get("kind")
    return kind is None or table == f"{source}_{kind}"


def _dbt_outcomes(graph: PipelineGraph, status: str, error: str) -> list[CheckOutcome]:
    """dbt build runs every test of the selection: a good transform stage means they passed; a
    failed one fails the models its failing nodes name (all of them when none is named)."""
    tested = [n for n in graph.nodes if n.tests]
    if status in _OK:
        return [CheckOutcome(n.key, DBT_CHECK, True, f"{len(n.tests)} dbt tests passed") for n in tested]
    lines = [ln.strip() for ln in error.splitlines() if ln.strip().startswith(("test ", "model "))]
    named = {n.key for n in tested if any(n.key[1] in ln for ln in lines)} or {n.key for n in tested}
    return [CheckOutcome(n.key, DBT_CHECK, n.key not in named,
                         "\n".join(ln for ln in lines if n.key[1] in ln) or error[:2000] if n.key in named
                         else "not named by the failed build")
            for n in tested]
