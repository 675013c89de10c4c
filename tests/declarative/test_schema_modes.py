"""The four schema modes through the one gate, on real DuckDB and PostgreSQL: one good page
and pages with a new column, a missing column, a retyped column, rule-breaking rows and a
missing required column, counted in raw, in quarantine (items and errors.json), in
ops.dq_results, and in the run's status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from lakebox.declarative.load import load_resources
from lakebox.settings import Settings
from lakebox.warehouse import Warehouse
from lakebox.warehouse.ops import quarantine as items
from tests.declarative.loading import (
    config,
    context,
    dq,
    errors_json,
    land,
    open_items,
    pages,
    raw,
    run_status,
    statuses,
    warehouse_for,
)

T = "2024-02-01T10:00:00Z"
GOOD = [{"id": 1, "pm25": 10.5, "flag": "a", "measured_at": T}, {"id": 2, "pm25": 20.0, "flag": "b", "measured_at": T}]
NEW_COLUMN = [{"id": 3, "pm25": 1.5, "flag": "a", "measured_at": T},
              {"id": 4, "pm25": 2.5, "flag": "a", "measured_at": T, "station": "x"}]
MISSING = [{"id": 5, "pm25": 3.5, "measured_at": T}, {"id": 6, "pm25": 4.5, "measured_at": T}]
RETYPED = [{"id": 7, "pm25": 5.5, "flag": "a", "measured_at": T},
           {"id": 8, "pm25": {"value": 6}, "flag": "a", "measured_at": T}]
RULES = [{"id": 9, "pm25": 7.5, "flag": "a", "measured_at": T}, {"id": 10, "pm25": -5.0, "flag": "a", "measured_at": T},
         {"id": 11, "pm25": 8.5, "flag": "z", "measured_at": T}]
NO_ID = [{"pm25": 9.5, "flag": "a", "measured_at": T}]
PAGES = {"good": GOOD, "new": NEW_COLUMN, "missing": MISSING, "retyped": RETYPED, "rules": RULES, "no_id": NO_ID}


def run(store: tuple[Settings, Warehouse], tmp_path: Path, mode: str) -> tuple[Any, Any, dict[str, str]]:
    """Land every page in one fetch and load it under `mode`: (ctx, config, batch id by page)."""
    cfg = config(tmp_path, schema=mode)
    ctx = context(*store, cfg, "run-1")
    batches = {name: land(ctx, cfg, records, n) for n, (name, records) in enumerate(PAGES.items(), 1)}
    result = load_resources(ctx, cfg, pages)
    assert result.rows_in == sum(len(r) for r in PAGES.values())
    return ctx, cfg, batches


def by_page(ctx: Any, cfg: Any, batches: dict[str, str]) -> dict[str, Any]:
    """The open quarantine item of each page (None: none)."""
    found = {item.batch_id: item for item in open_items(ctx, cfg)}
    return {name: found.get(batch) for name, batch in batches.items()}


def test_freeze_quarantines_every_batch_that_changed_shape_or_broke_a_rule_whole(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    ctx, cfg, batches = run(store, tmp_path, "freeze")
    assert [i for (i,) in raw(ctx, cfg)] == [1, 2]
    assert statuses(ctx, cfg) == {b: "loaded" if name == "good" else "quarantined" for name, b in batches.items()}
    found = by_page(ctx, cfg, batches)
    assert found["good"] is None and all(found[p] for p in PAGES if p != "good")
    assert dq(ctx, cfg, batches["new"])[("schema_drift", "station")] == (False, 0)
    assert dq(ctx, cfg, batches["missing"])[("schema_drift", "flag")] == (False, 0)
    assert dq(ctx, cfg, batches["retyped"])[("schema_drift", "pm25")] == (False, 0)
    assert dq(ctx, cfg, batches["rules"])[("min", "pm25")] == (False, 1)
    rules = errors_json(ctx, found["rules"])["rules"]
    assert {(r["rule"], r["column"], r["failing_rows"]) for r in rules} == {("min", "pm25", 1),
                                                                            ("accepted_values", "flag", 1)}
    assert ctx.lake.read_bytes(found["rules"].quarantine_path).startswith(b'{"data":'), "the original page is kept"
    assert run_status(ctx) == "partial"


def test_evolve_adds_new_columns_loads_missing_ones_as_null_and_still_applies_rules(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    ctx, cfg, batches = run(store, tmp_path, "evolve")
    assert raw(ctx, cfg, "id, station") == [(1, None), (2, None), (3, None), (4, "x"), (5, None), (6, None)]
    assert raw(ctx, cfg, "id, flag")[4:] == [(5, None), (6, None)]
    assert dq(ctx, cfg, batches["new"])[("new_column", "station")] == (True, 0)
    assert dq(ctx, cfg, batches["missing"])[("missing_column", "flag")] == (True, 0)
    found = by_page(ctx, cfg, batches)
    assert {p for p, item in found.items() if item} == {"retyped", "rules", "no_id"}, "rules still apply"
    assert statuses(ctx, cfg)[batches["rules"]] == "quarantined"
    assert run_status(ctx) == "partial"
    # a later run: the evolved column is part of the table's contract, typed as it was added
    ctx2 = context(*store, cfg, "run-2")
    later = land(ctx2, cfg, [{"id": 12, "pm25": 1.0, "flag": "a", "measured_at": T, "station": "y"}], 10)
    load_resources(ctx2, cfg, pages)
    assert statuses(ctx2, cfg)[later] == "loaded" and raw(ctx2, cfg, "id, station")[-1] == (12, "y")


def test_discard_row_sets_the_bad_rows_aside_as_rows_and_loads_the_rest(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    ctx, cfg, batches = run(store, tmp_path, "discard_row")
    assert [i for (i,) in raw(ctx, cfg)] == [1, 2, 3, 5, 6, 7, 9]
    assert {name: s for name, s in ((n, statuses(ctx, cfg)[b]) for n, b in batches.items())} == {
        "good": "loaded", "new": "loaded", "missing": "loaded", "retyped": "loaded", "rules": "loaded",
        "no_id": "quarantined"}, "the original batches stay in the raw lake, marked loaded"
    found = by_page(ctx, cfg, batches)
    assert {p for p, item in found.items() if item} == {"new", "retyped", "rules", "no_id"}
    doc = errors_json(ctx, found["rules"])
    assert doc["schema_mode"] == "discard_row" and doc["rows_set_aside"] == 2
    assert [(r["record"], r["rule"], r["column"]) for r in doc["set_aside"]] == [
        (2, "min", "pm25"), (3, "accepted_values", "flag")]
    assert doc["set_aside"][1]["value"] == "z"
    assert {(r["rule"], r["column"], tuple(r["rows"])) for r in doc["rules"]} >= {
        ("min", "pm25", (2,)), ("accepted_values", "flag", (3,))}
    kept = ctx.lake.read_bytes(found["rules"].quarantine_path).decode().splitlines()
    assert len(kept) == 2 and '"id":11' in kept[1].replace(" ", ""), "each set-aside row kept whole"
    assert [(r["record"], r["rule"], r["column"], r["value"]) for r in errors_json(ctx, found["new"])["set_aside"]] == [
        (2, "new_column", "station", "x")]
    assert [(r["record"], r["rule"], r["column"]) for r in errors_json(ctx, found["retyped"])["set_aside"]] == [
        (2, "type", "pm25")]
    rules = dq(ctx, cfg, batches["rules"])
    assert rules[("min", "pm25")] == (False, 1) and rules[("discard_row", None)] == (False, 2)
    assert dq(ctx, cfg, batches["good"])[("not_null", "id")] == (True, 0)
    assert run_status(ctx) == "partial"


def test_discard_value_loads_every_row_with_bad_values_as_null_and_keeps_them(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    ctx, cfg, batches = run(store, tmp_path, "discard_value")
    assert [i for (i,) in raw(ctx, cfg)] == list(range(1, 12))
    loaded = {i: (pm, flag) for i, pm, flag in raw(ctx, cfg, "id, pm25, flag")}
    assert loaded[8] == (None, "a") and loaded[10] == (None, "a") and loaded[11] == (8.5, None)
    assert loaded[7] == (5.5, "a") and loaded[4] == (2.5, "a")
    found = by_page(ctx, cfg, batches)
    assert {p for p, item in found.items() if item} == {"new", "retyped", "rules", "no_id"}
    doc = errors_json(ctx, found["rules"])
    assert (doc["schema_mode"], doc["rows_set_aside"], doc["values_set_aside"]) == ("discard_value", 0, 2)
    assert [(r["record"], r["column"], r["row_set_aside"]) for r in doc["set_aside"]] == [
        (2, "pm25", False), (3, "flag", False)]
    assert dq(ctx, cfg, batches["rules"])[("discard_value", None)] == (False, 2)
    assert dq(ctx, cfg, batches["no_id"])[("schema_drift", "id")] == (False, 0)
    assert run_status(ctx) == "partial"


def test_discard_value_sets_a_row_aside_where_null_would_break_the_contract(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    """A duplicate key or a null id cannot be fixed by a NULL: the row goes, its first record stays."""
    cfg = config(tmp_path, schema="discard_value")
    ctx = context(*store, cfg, "run-1")
    batch = land(ctx, cfg, [{"id": 1, "pm25": 1.0, "flag": "a", "measured_at": T},
                            {"id": 1, "pm25": 2.0, "flag": "a", "measured_at": T},
                            {"id": None, "pm25": 3.0, "flag": "a", "measured_at": T}], 1)
    load_resources(ctx, cfg, pages)
    assert raw(ctx, cfg, "id, pm25") == [(1, 1.0)]
    (item,) = open_items(ctx, cfg)
    doc = errors_json(ctx, item)
    assert [(r["record"], r["rule"], r["row_set_aside"]) for r in doc["set_aside"]] == [
        (2, "unique", True), (3, "not_null", True)]
    assert dq(ctx, cfg, batch)[("unique", "id")] == (False, 1)


def test_a_clean_batch_in_every_mode_ends_the_run_successful(store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    for mode in ("freeze", "evolve", "discard_row", "discard_value"):
        cfg = config(tmp_path, schema=mode)
        ctx = context(*store, cfg, "run-1")
        land(ctx, cfg, GOOD, 1)
        assert load_resources(ctx, cfg, pages).rows_out == 2
        assert run_status(ctx) == "success" and not open_items(ctx, cfg), mode


def test_quarantine_show_names_each_set_aside_row(tmp_path: Path, lakebox_env: dict[str, str]) -> None:
    """`lakebox quarantine show` of a discard_row item: the mode, and each row's record, rule, column and value."""
    from tests.conftest import run_cli

    home = Path(lakebox_env["LAKEBOX_HOME"])
    cfg = config(tmp_path, schema="discard_row")
    with warehouse_for(home, None) as found:
        ctx = context(*found, cfg, "run-1")
        land(ctx, cfg, RULES, 1)
        load_resources(ctx, cfg, pages)
        (item,) = open_items(ctx, cfg)
    shown = run_cli("quarantine", "show", item.id, env=lakebox_env)
    assert shown.returncode == 0, shown.stderr
    doc = orjson.loads(shown.stdout)
    assert doc["schema_mode"] == "discard_row" and doc["rows_set_aside"] == 2
    assert [(r["record"], r["rule"], r["column"], r["value"]) for r in doc["set_aside"]][1] == (
        3, "accepted_values", "flag", "z")
    listed = run_cli("quarantine", "list", env=lakebox_env)
    assert item.id in listed.stdout and "min(pm25)" in listed.stdout


def test_a_corrected_page_settles_the_set_aside_rows_and_merge_keeps_one_row_per_key(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    cfg = config(tmp_path, schema="discard_row", write="merge")
    ctx = context(*store, cfg, "run-1")
    land(ctx, cfg, RULES, 1)
    load_resources(ctx, cfg, pages)
    (item,) = open_items(ctx, cfg)
    assert run_status(ctx) == "partial"
    ctx2 = context(*store, cfg, "run-2")
    fixed = land(ctx2, cfg, [dict(r, pm25=1.0, flag="a") for r in RULES], 1)  # the same request, sent again
    load_resources(ctx2, cfg, pages)
    assert not open_items(ctx2, cfg) and run_status(ctx2) == "success"
    settled = [i for i in items.items(ctx2.warehouse, pipeline=cfg.name, include_closed=True) if i.id == item.id]
    assert [(i.status, i.superseded_by_batch) for i in settled] == [("resolved", fixed)]
    assert raw(ctx2, cfg, "id, pm25") == [(9, 1.0), (10, 1.0), (11, 1.0)]


def test_evolve_checks_a_later_page_against_the_type_an_earlier_page_gave_its_new_column(
        store: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    cfg = config(tmp_path, schema="evolve")
    ctx = context(*store, cfg, "run-1")
    first = land(ctx, cfg, [dict(GOOD[0], station=5)], 1)
    same = land(ctx, cfg, [dict(GOOD[1], station=6)], 2)
    other = land(ctx, cfg, [dict(GOOD[0], id=3, station="north")], 3)
    load_resources(ctx, cfg, pages)
    assert statuses(ctx, cfg) == {first: "loaded", same: "loaded", other: "quarantined"}
    assert raw(ctx, cfg, "id, station") == [(1, 5), (2, 6)]
    assert dq(ctx, cfg, other)[("type", "station")] == (False, 1)
