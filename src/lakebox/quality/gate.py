"""The one gate engine: every source's decision loop, from check results to load or quarantine.

A source (API pages, file drops) supplies only its reader and its checks, as a `GateSource`:
its pending input, checked, in groups (`decisions`), and how to load the good ones (`load`).
`run_gate` does the rest, the same way for every source: each group's check results are
recorded in ops.dq_results, its bad input quarantined and its good input loaded, marked and
the quarantined versions it corrects settled, all in one transaction; under `fail-fast` the
source stops at its first bad input; when every input of the run broke the schema the run
fails.

A check reports a `CheckResult`. Input whose checks failed goes through `quarantine`: its
original bytes are copied to `quarantine/` with an `errors.json` (one schema for every
source), the ledger marks the batch quarantined with its failed rules as JSON, an item is
opened in ops.quarantine, and the run notes it, so the run ends `partial` (exit 4) while
good input still loads and builds the marts. Under the `fail-fast` policy the source stops
at the first bad input and the run fails before its marts.

Under the discard schema modes (discard_row, discard_value) an input whose only failures are
rows or values it set aside (`Checked.set_aside`, results marked with the mode as their
`action`) loads the rest; the set-aside rows and values go to quarantine as their own item
(`quarantine_rows`: each with its rule, column, value and record number; the input itself
stays in the raw lake and is marked loaded), so the run ends `partial` while it is open.

An open item is settled by a corrected version of the same input (`settle_superseded`:
the same file name for file drops, the same request for API pages) or by a person
(`lakebox quarantine dismiss ID --reason ...`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lakebox.errors import ConfigError
from lakebox.stage import StageResult
from lakebox.warehouse import ops
from lakebox.warehouse.ops import quarantine as items

if TYPE_CHECKING:
    from lakebox.settings import Settings
    from lakebox.stage import RunContext

QUARANTINE, FAIL_FAST = "quarantine", "fail-fast"
POLICIES = (QUARANTINE, FAIL_FAST)


@dataclass(frozen=True)
class CheckResult:
    """One rule over one batch or file. `rows` are the failing rows' numbers where known
    (a file's line numbers); `sample` shows a few failing rows."""

    check_name: str
    column_name: str | None
    passed: bool
    failing_rows: int
    sample: list[Any]
    detail: str = ""
    rows: tuple[int, ...] = ()
    # "" when a failure fails its input; a discard mode's name when its rows or values were set aside
    action: str = ""


def failed(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def blocking(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The failures that keep an input out of the warehouse (not those set aside row by row)."""
    return [r for r in results if not r.passed and not r.action]


def policy_for(settings: Settings, pipeline: str) -> str:
    """The gate policy a pipeline declares (`LAKEBOX_<PIPELINE>_POLICY`, or `policy` in its
    lakebox.toml table); `quarantine` for a pipeline that declares none."""
    declared = settings.pipeline(pipeline)
    value = (declared["policy"] if "policy" in declared else None) or QUARANTINE
    policy = value.strip().lower()
    if policy not in POLICIES:
        variable = declared.variables.get("policy", f"LAKEBOX_{pipeline.upper()}_POLICY")
        raise ConfigError(f"{variable}={policy!r} is not a policy; use '{QUARANTINE}' (default) or '{FAIL_FAST}'")
    return policy


def row_numbers(result: CheckResult) -> list[int]:
    """The failing rows' numbers: given, or read from the samples' `_line`."""
    if result.rows:
        return list(result.rows)
    return [s["_line"] for s in result.sample if isinstance(s, dict) and isinstance(s.get("_line"), int)]


def describe_failure(source: str, item: str, result: CheckResult) -> str:
    """One line naming source, item, rule, column, rows and what was wrong."""
    column = f", column {result.column_name}" if result.column_name else ""
    count = f", {result.failing_rows} row(s)" if result.failing_rows else ""
    lines = row_numbers(result)
    at = f" (line {', '.join(map(str, lines))})" if lines else ""
    return f"source {source}, {item}: rule {result.check_name}{column}{count}: {result.detail}{at}"


def rules_document(results: Iterable[CheckResult], samples: bool = True) -> list[dict[str, Any]]:
    """The failed rules as errors.json and the ledger write them."""
    return [
        {
            "rule": r.check_name,
            "column": r.column_name,
            "failing_rows": r.failing_rows,
            "rows": row_numbers(r),
            "detail": r.detail,
            **({"sample": r.sample} if samples else {}),
        }
        for r in failed(results)
    ]


def errors_document(
    *, source: str, batch_id: str, item: str, lake_path: str, quarantine_path: str,
    results: Sequence[CheckResult], hint: str,
) -> dict[str, Any]:
    """The one errors.json schema, beside every quarantined item."""
    return {
        "source": source,
        "batch_id": batch_id,
        "item": item,
        "lake_path": lake_path,
        "quarantine_path": quarantine_path,
        "rules": rules_document(results),
        "what_to_do": hint,
    }


def quarantine(
    ctx: RunContext, *, source: str, batch_id: str, lake_key: str, results: Sequence[CheckResult], hint: str,
    item: str | None = None,
) -> str:
    """Quarantine one batch or file that failed its gate; returns its quarantine key.

    `item` is the name the source gave the input (a file name); by default the lake
    object's name. Call inside the transaction that records the batch's check results.
    """
    name = item or lake_key.rsplit("/", 1)[-1]
    stored = f"{batch_id}/{name}" if item else name
    where = f"quarantine/{source}/ingest_date={dt.date.today().isoformat()}/{stored}"  # the lake's layout
    doc = errors_document(source=source, batch_id=batch_id, item=name, lake_path=lake_key, quarantine_path=where,
                          results=results, hint=hint)
    qkey = ctx.lake.quarantine(source, stored, ctx.lake.read_bytes(lake_key), doc)
    rules = orjson.dumps(rules_document(results, samples=False), default=str).decode()
    wh = ctx.warehouse
    ops.mark_batch(wh, batch_id, ops.QUARANTINED, error=rules)
    opened = items.open_item(wh, source=source, pipeline=ctx.pipeline, batch_id=batch_id, item=name,
                             lake_path=lake_key, quarantine_path=qkey, rules=rules, run_id=ctx.run_id)
    for r in failed(results):
        ctx.log.error("input quarantined", source=source, batch_id=batch_id, item=name, rule=r.check_name,
                      column=r.column_name, failing_rows=r.failing_rows, quarantine=qkey, quarantine_id=opened.id)
    ctx.note_quarantined(opened)
    return qkey


@dataclass(frozen=True)
class SetAside:
    """The rows or values a discard mode took out of an input that otherwise loads: `body`
    (JSON lines, one per value: record, rule, column, value, the whole row where the row was
    set aside) is what quarantine keeps; `shown` the first of them, for errors.json."""

    mode: str
    rows: int
    values: int
    body: bytes
    shown: list[dict[str, Any]]


def quarantine_rows(ctx: RunContext, *, source: str, checked: Checked, hint: str) -> str:
    """Quarantine the rows and values a discard mode set aside of an input that loads (its
    original stays in the raw lake, marked loaded): their file and errors.json go to
    `quarantine/`, an item opens, the run notes it. Call inside the input's load transaction.
    Returns the quarantine key."""
    aside = checked.set_aside
    assert aside is not None, "quarantine_rows needs the rows set aside"
    name = checked.item or checked.key.rsplit("/", 1)[-1]
    stored = f"{checked.batch_id}/{name}.{aside.mode}.jsonl" if checked.item else f"{name}.{aside.mode}.jsonl"
    where = f"quarantine/{source}/ingest_date={dt.date.today().isoformat()}/{stored}"
    doc = errors_document(source=source, batch_id=checked.batch_id, item=name, lake_path=checked.key,
                          quarantine_path=where, results=checked.results, hint=hint)
    loaded = "every other row loaded" if aside.mode == "discard_row" else "the bad values loaded as NULL"
    doc |= {
        "schema_mode": aside.mode,
        "rows_set_aside": aside.rows,
        "values_set_aside": aside.values,
        "set_aside": aside.shown,
        "what_to_do": f"{aside.rows} row(s) and {aside.values} value(s) broke the contract and were set aside "
                      f"({aside.mode}; {loaded}); each is in {where}, with its rule, column, value and record "
                      f"number. {hint}",
    }
    qkey = ctx.lake.quarantine(source, stored, aside.body, doc)
    rules = orjson.dumps(rules_document(checked.results, samples=False), default=str).decode()
    opened = items.open_item(ctx.warehouse, source=source, pipeline=ctx.pipeline, batch_id=checked.batch_id,
                             item=name, lake_path=checked.key, quarantine_path=qkey, rules=rules, run_id=ctx.run_id)
    for r in failed(checked.results):
        ctx.log.warning("rows set aside", source=source, batch_id=checked.batch_id, item=name, mode=aside.mode,
                        rule=r.check_name, column=r.column_name, failing_rows=r.failing_rows, quarantine=qkey,
                        quarantine_id=opened.id)
    ctx.note_quarantined(opened)
    return qkey


def quarantine_unreadable(
    ctx: RunContext, *, source: str, batch_id: str, lake_key: str, result: CheckResult, hint: str,
) -> str:
    """Record the one failed check of an input that could not be read at all (a response
    still unreadable after its retries) and quarantine it, as the engine does any failed
    input; returns its quarantine key. Call inside the transaction that records it landed."""
    ops.record_dq_results_many(ctx.warehouse, ctx.run_id, source, [(batch_id, [result])])
    return quarantine(ctx, source=source, batch_id=batch_id, lake_key=lake_key, results=[result], hint=hint)


def settle_superseded(ctx: RunContext, source: str, loaded: Sequence[str]) -> int:
    """Resolve open items of `source` that a just-loaded batch corrects: the same file name
    (file drops) or the same request (API pages). Call inside the load's transaction.
    Returns how many items were resolved."""
    wh = ctx.warehouse
    waiting = items.items(wh, source=source)
    if not waiting or not loaded:
        return 0
    metas = ops.ledger.batch_meta(wh, [i.batch_id for i in waiting] + list(loaded))
    by_input = {key: batch_id for batch_id in loaded if (key := quarantine_key(metas.get(batch_id, {})))}
    settled = 0
    for item in waiting:  # rows a load sets aside open their item after this, so none is settled by its own load
        key = quarantine_key(metas.get(item.batch_id, {}))
        if key and key in by_input:
            items.resolve(wh, [item.id], by_batch=by_input[key], run_id=ctx.run_id)
            ctx.log.info("quarantined item resolved by a corrected version", quarantine_id=item.id,
                         item=item.item, batch_id=by_input[key])
            settled += 1
    return settled


def quarantine_key(meta: dict[str, Any]) -> str | None:
    """What makes two batches versions of the same input, from a batch's ledger meta: the
    one definition by which a loaded batch settles a quarantined one."""
    if meta.get("file"):
        return f"file:{meta['file']}"
    if meta.get("request") is not None:  # the same query of another resource (repo, indicator) is another input
        request = {"resource": meta.get("resource"), "params": meta["request"]}
        return "request:" + orjson.dumps(request, option=orjson.OPT_SORT_KEYS).decode()
    return None


def whole_source_drifted(results: Sequence[Sequence[CheckResult]]) -> bool:
    """True when every batch checked in a run broke the schema: the source changed shape,
    which is a failure of the run, not a partial one."""
    return bool(results) and all(any(r.check_name == "schema_drift" for r in blocking(batch)) for batch in results)


@dataclass
class Checked:
    """One pending input after its checks. `item` is the source's name for it (a file name;
    by default the lake object's); inputs of one `unit` (a day's drop) stand or fall together
    under fail-fast; `load` is what the source needs to load it (a scratch relation);
    `set_aside` what a discard mode took out of it (quarantined as rows when it loads)."""

    batch_id: str
    key: str
    results: list[CheckResult]
    rows: int = 0
    item: str | None = None
    unit: str | None = None
    load: Any = field(default=None, repr=False)
    set_aside: SetAside | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not blocking(self.results)


class GateSource(Protocol):
    """What a source gives the gate: its input checked, and how to load the good part."""

    source: str  # the ledger's source name
    noun: str  # what one input is called in messages: "batch", "file"
    hint: str  # what to do about a quarantined input (errors.json)
    drift_hint: str  # what to do when every input of a run broke the schema
    ledger_rows: bool  # the ledger keeps the rows loaded (True) or the rows counted when landed

    def pending(self) -> int:
        """How many inputs wait to be decided in this run."""

    def decisions(self) -> Generator[list[Checked]]:
        """The pending inputs, checked, in the order they are decided, in groups: each group
        is decided (one transaction) before the next is asked for."""

    def load(self, good: list[Checked]) -> dict[str, int]:
        """Load the good inputs' rows; called inside the group's transaction. Returns the
        rows loaded per batch."""


def run_gate(ctx: RunContext, source: GateSource, policy: str | None = None) -> StageResult:
    """Decide every pending input of `source` (see module doc); returns its rows in and out."""
    policy = policy or policy_for(ctx.settings, ctx.pipeline)
    result = StageResult(rows_in=0, rows_out=0)
    decided: list[Checked] = []
    groups = source.decisions()
    try:
        for group in groups:
            first_bad = next((n for n, c in enumerate(group) if not c.ok), None)
            if first_bad is None or policy != FAIL_FAST:
                _decide(ctx, source, group, result)
                decided += group
                continue
            bad = group[first_bad]
            chosen = [c for c in group[:first_bad] if bad.unit is None or c.unit != bad.unit] + [bad]
            _decide(ctx, source, chosen, result)
            decided += chosen
            ctx.stop_at_gate(_stopped_message(source, bad, source.pending() - len(decided)))
            break
    finally:
        groups.close()
    if whole_source_drifted([c.results for c in decided]):
        ctx.stop_at_gate(f"source {source.source}: every {source.noun} of this run ({len(decided)}) broke the "
                         f"contract's schema; {source.drift_hint}")
    return result


def _stopped_message(source: GateSource, bad: Checked, waiting: int) -> str:
    name = bad.item or f"{source.noun} {bad.batch_id}"
    unit = f"; nothing of {bad.unit} was loaded" if bad.unit is not None else ""
    plural = f"{source.noun}(es)" if source.noun.endswith(("s", "x", "ch", "sh")) else f"{source.noun}(s)"
    return (f"fail-fast policy: stopped at {name} of source {source.source}{unit}; {waiting} later "
            f"{plural} stay pending until it is fixed: "
            + "; ".join(describe_failure(source.source, name, r) for r in blocking(bad.results)))


def _decide(ctx: RunContext, source: GateSource, group: list[Checked], result: StageResult) -> None:
    """One transaction for a group of checked inputs: every check result, the bad ones
    quarantined, the good ones loaded and marked, the quarantined versions they correct settled."""
    if not group:
        return
    wh = ctx.warehouse
    good = [c for c in group if c.ok]
    loaded: dict[str, int] = {}
    with wh.transaction():
        ops.record_dq_results_many(wh, ctx.run_id, source.source, [(c.batch_id, c.results) for c in group])
        for c in group:
            if not c.ok:
                quarantine(ctx, source=source.source, batch_id=c.batch_id, lake_key=c.key, results=c.results,
                           hint=source.hint, item=c.item)
        if good:
            loaded = source.load(good)
            if source.ledger_rows:
                ops.mark_loaded(wh, loaded)
            else:
                ops.mark_batches(wh, [c.batch_id for c in good], ops.LOADED)
            settle_superseded(ctx, source.source, [c.batch_id for c in good])
            for c in good:
                if c.set_aside is not None:
                    quarantine_rows(ctx, source=source.source, checked=c, hint=source.hint)
    result.rows_in += sum(c.rows for c in group)
    result.rows_out += sum(loaded.values())
