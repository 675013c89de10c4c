"""The one path from a failed check to quarantine, for every source.

A check reports a `CheckResult`. Input whose checks failed goes through `quarantine`: its
original bytes are copied to `quarantine/` with an `errors.json` (one schema for every
source), the ledger marks the batch quarantined with its failed rules as JSON, an item is
opened in ops.quarantine, and the run notes it, so the run ends `partial` (exit 4) while
good input still loads and builds the marts. Under the `fail-fast` policy the source stops
at the first bad input and the run fails before its marts.

An open item is settled by a corrected version of the same input (`settle_superseded`:
the same file name for file drops, the same request for API pages) or by a person
(`lakebox quarantine dismiss ID --reason ...`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from lakebox.errors import ConfigError
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


def failed(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


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


def settle_superseded(ctx: RunContext, source: str, loaded: Sequence[str]) -> int:
    """Resolve open items of `source` that a just-loaded batch corrects: the same file name
    (file drops) or the same request (API pages). Call inside the load's transaction.
    Returns how many items were resolved."""
    wh = ctx.warehouse
    waiting = items.items(wh, source=source)
    if not waiting or not loaded:
        return 0
    metas = ops.ledger.batch_meta(wh, [i.batch_id for i in waiting] + list(loaded))
    by_input = {key: batch_id for batch_id in loaded if (key := _input_key(metas.get(batch_id, {})))}
    settled = 0
    for item in waiting:
        key = _input_key(metas.get(item.batch_id, {}))
        if key and key in by_input:
            items.resolve(wh, [item.id], by_batch=by_input[key], run_id=ctx.run_id)
            ctx.log.info("quarantined item resolved by a corrected version", quarantine_id=item.id,
                         item=item.item, batch_id=by_input[key])
            settled += 1
    return settled


def _input_key(meta: dict[str, Any]) -> str | None:
    """What makes two batches versions of the same input."""
    if meta.get("file"):
        return f"file:{meta['file']}"
    if meta.get("request") is not None:  # the same query of another resource (repo, indicator) is another input
        request = {"resource": meta.get("resource"), "params": meta["request"]}
        return "request:" + orjson.dumps(request, option=orjson.OPT_SORT_KEYS).decode()
    return None


def whole_source_drifted(results: Sequence[Sequence[CheckResult]]) -> bool:
    """True when every batch checked in a run broke the schema: the source changed shape,
    which is a failure of the run, not a partial one."""
    return bool(results) and all(any(r.check_name == "schema_drift" for r in failed(batch)) for batch in results)
