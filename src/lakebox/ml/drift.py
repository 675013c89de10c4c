"""Has what the model scores moved away from what it was built on?

Drift compares like with like; which rows are alike is the spec's `drift_population`:

- "window" (github_commits): the last `drift_window_days` before the newest row (at least
  `drift_min_rows` rows) against every row before it. Right when every row is the same
  kind of thing arriving over time, as commits are, and new rows are what gets scored.
- "unlabelled" (who_gho): the rows awaiting a label, which the champion forecasts now
  (each country's latest observation), against the same population as it stood when the
  champion was trained, recorded then in `ml.drift_reference` by `record_reference`.
  Those rows differ in kind from the labelled history (a latest row's gap is the one
  before it, and every country has exactly one), so comparing them with the history, or
  the newest period with the periods before it, flags that difference on every run;
  compared with themselves at training time, only what moved since is flagged, and the
  same data gives statistics of zero.

Numeric features: the two-sample Kolmogorov-Smirnov test (drifted when the statistic
exceeds KS_THRESHOLD and p < KS_ALPHA, so a tiny but "significant" shift in a big sample
is not an alarm). Categorical features: the population stability index over the
reference's top values plus "other". Text features: PSI over the reference's top tokens
and over the words texts start with (tokenised in DuckDB). PSI above PSI_THRESHOLD is
drift (0.2 is the usual "significant shift" line).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakebox.log import get_logger
from lakebox.ml import data, tables

if TYPE_CHECKING:
    import pyarrow as pa

    from lakebox.ml.spec import MLModelSpec
    from lakebox.settings import Settings
    from lakebox.warehouse import Warehouse

KS_THRESHOLD, KS_ALPHA = 0.1, 0.01
PSI_THRESHOLD = 0.2
TOP_VALUES = 20
_EPS = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str  # ks | psi
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    model_name: str
    drifted: bool
    features: list[FeatureDrift] = field(default_factory=list)
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    message: str = ""
    computed: bool = True  # False: too little to compare (the message says why); nothing was tested

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]


def compare(reference: pa.Table, current: pa.Table, features: tuple[str, ...] | list[str],
            text_features: tuple[str, ...] = ()) -> list[FeatureDrift]:
    """Each feature of `current` against `reference`, by the test its kind calls for."""
    found = []
    for name in features:
        kind = reference.schema.field(name).type
        if name in text_features:
            found.append(_psi_text(name, "tokens", reference[name], current[name]))
            found.append(_psi_text(name, "first word", reference[name], current[name]))
        elif _numeric(kind):
            found.append(_ks(name, reference[name], current[name]))
        else:
            found.append(_psi_values(name, reference[name], current[name]))
    return found


def psi(expected: Any, actual: Any) -> float:
    """Population stability index of two count vectors over the same bins."""
    import numpy as np

    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / max(e.sum(), 1.0), _EPS, None)
    a = np.clip(a / max(a.sum(), 1.0), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _ks(name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray) -> FeatureDrift:
    import numpy as np
    from scipy.stats import ks_2samp

    ref = np.asarray(reference.drop_null().to_numpy(), dtype=float)
    cur = np.asarray(current.drop_null().to_numpy(), dtype=float)
    if not len(ref) or not len(cur):
        return FeatureDrift(name, "ks", 0.0, None, KS_THRESHOLD, False)
    with warnings.catch_warnings():  # many ties defeat the exact p; scipy then uses the asymptotic one
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        result = ks_2samp(ref, cur)
    stat, p = float(result.statistic), float(result.pvalue)
    return FeatureDrift(name, "ks", stat, p, KS_THRESHOLD, stat > KS_THRESHOLD and p < KS_ALPHA)


def _binned_counts(ref_counts: dict[str, int], cur_counts: dict[str, int]) -> tuple[list[int], list[int]]:
    """Counts over the reference's top values, the rest summed into one 'other' bin."""
    top = [k for k, _ in sorted(ref_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]]
    ref = [ref_counts.get(k, 0) for k in top] + [sum(ref_counts.values()) - sum(ref_counts.get(k, 0) for k in top)]
    cur = [cur_counts.get(k, 0) for k in top] + [sum(cur_counts.values()) - sum(cur_counts.get(k, 0) for k in top)]
    return ref, cur


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = pc.value_counts(pc.cast(column, pa.string()).fill_null("(null)"))
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))


def _psi_values(name: str, reference: pa.ChunkedArray, current: pa.ChunkedArray) -> FeatureDrift:
    ref, cur = _binned_counts(_value_counts(reference), _value_counts(current))
    value = psi(ref, cur)
    return FeatureDrift(name, "psi", value, None, PSI_THRESHOLD, value > PSI_THRESHOLD)


_TEXT_BINS = {
    # every word of every text: the vocabulary's mix
    "tokens": "select tok, count(*) from (select unnest(string_split_regex(lower(t), '[^a-z0-9]+')) as tok "
              "from texts) where length(tok) >= 2 group by tok",
    # one bin per text: the word it starts with (a commit subject's verb: update, add, fix, ...)
    "first word": "select lower(regexp_extract(t, '[A-Za-z0-9]+')) as w, count(*) from texts group by w",
}


def _text_counts(column: pa.ChunkedArray, binning: str) -> dict[str, int]:
    """Counts of a text column's bins, set-based in an in-memory DuckDB."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"t": column}))
        rows = con.execute(_TEXT_BINS[binning]).fetchall()
    finally:
        con.close()
    return {str(tok): int(n) for tok, n in rows}


def _psi_text(name: str, binning: str, reference: pa.ChunkedArray, current: pa.ChunkedArray) -> FeatureDrift:
    ref, cur = _binned_counts(_text_counts(reference, binning), _text_counts(current, binning))
    value = psi(ref, cur)
    return FeatureDrift(f"{name} ({binning})", "psi", value, None, PSI_THRESHOLD, value > PSI_THRESHOLD)


def window(rows: pa.Table, spec: MLModelSpec) -> tuple[pa.Table, pa.Table, dt.datetime | None, dt.datetime | None]:
    """(reference, current, window_start, window_end) from rows ordered by time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    times = rows[spec.time_column]
    end = times[-1].as_py()
    if isinstance(end, dt.datetime):
        newest = pc.greater(times, pa.scalar(end - dt.timedelta(days=spec.drift_window_days), times.type))
    else:  # a period number such as a year: the newest period is the window
        newest = pc.greater_equal(times, pa.scalar(end, times.type))
    in_window = int(pc.sum(newest).as_py() or 0)
    size = max(in_window, min(spec.drift_min_rows, rows.num_rows))
    cut = rows.num_rows - size
    current = rows.slice(cut)
    return rows.slice(0, cut), current, _timestamp(current[spec.time_column][0].as_py()), _timestamp(end)


def _timestamp(value: Any) -> dt.datetime | None:
    """A window bound as a timestamp (a year becomes its first day)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, int) and 1 <= value <= 9999:
        return dt.datetime(value, 1, 1)
    return None


def drift(settings: Settings, warehouse: Warehouse, spec: MLModelSpec) -> DriftResult:
    """Compare the rows the spec's `drift_population` picks; write ml.drift_report; flag drift."""
    from lakebox.ml import tracking

    with tracking.store_errors(settings):
        return _drift(settings, warehouse, spec)


def _drift(settings: Settings, warehouse: Warehouse, spec: MLModelSpec) -> DriftResult:
    picked = _since_training(settings, warehouse, spec) if spec.drift_population == "unlabelled" \
        else _newest_window(warehouse, spec)
    if isinstance(picked, str):
        get_logger().info("drift skipped", model=spec.name, reason=picked)
        return DriftResult(spec.name, False, message=picked, computed=False)
    reference, current, start, end, against = picked
    found = compare(reference, current, spec.drift_columns, spec.text_features)
    result = DriftResult(spec.name, any(f.drifted for f in found), found, start, end)
    result.message = (f"model {spec.name}: drift in {', '.join(result.drifted_features)} against {against}"
                      if result.drifted else f"model {spec.name}: no drift in {len(found)} features against {against}")
    write_report(warehouse, result)
    get_logger().info("drift computed", model=spec.name, drifted=result.drifted, against=against,
                      features=result.drifted_features, window_start=str(start), window_end=str(end))
    return result


_Picked = tuple["pa.Table", "pa.Table", dt.datetime | None, dt.datetime | None, str]


def _newest_window(warehouse: Warehouse, spec: MLModelSpec) -> _Picked | str:
    """(reference, current, start, end, what the reference is), or why there is too little."""
    rows = data.read_rows(warehouse, spec)
    if rows.num_rows < 2 * spec.drift_min_rows:
        return (f"model {spec.name}: {rows.num_rows} rows, at least {2 * spec.drift_min_rows} are needed "
                "to compare a window with a reference; drift not computed")
    reference, current, start, end = window(rows, spec)
    return reference, current, start, end, "the rows before the window"


def _since_training(settings: Settings, warehouse: Warehouse, spec: MLModelSpec) -> _Picked | str:
    """The rows awaiting a label now, and as they were when the champion was trained."""
    import pyarrow.compute as pc

    from lakebox.ml import history, registry

    client, past = history.open_store(settings, warehouse, spec.name)
    champion = registry.champion_version(client, spec.name)
    if champion is None:
        return (f"model {spec.name}: no champion yet, and drift compares what it scores with what it was "
                f"trained beside; train first (lakebox ml train {spec.pipeline}); drift not computed")
    version = past.label(champion)
    current = data.read_rows(warehouse, spec, f"where {spec.label_column} is null")
    reference = read_reference(warehouse, spec, version, current.schema)
    if reference is None:
        return (f"model {spec.name}: champion v{version} has no reference for {', '.join(spec.drift_columns)} in "
                f"{tables.DRIFT_REFERENCE} (recorded when a version is trained); train a new version "
                f"(lakebox ml train {spec.pipeline}); drift not computed")
    if min(reference.num_rows, current.num_rows) < spec.drift_min_rows:
        return (f"model {spec.name}: {current.num_rows} rows await a label now and {reference.num_rows} did when "
                f"v{version} was trained; at least {spec.drift_min_rows} of each are needed; drift not computed")
    times = current[spec.time_column]
    return (reference, current, _timestamp(pc.min(times).as_py()), _timestamp(pc.max(times).as_py()),
            f"the rows awaiting a label when champion v{version} was trained")


def record_reference(warehouse: Warehouse, spec: MLModelSpec, version: str, rows: pa.Table) -> int:
    """Keep the drift features of the rows awaiting a label when `version` was trained
    (the reference of drift_population "unlabelled"), one long row per row and feature."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakebox.warehouse.ops import utcnow

    unlabelled = rows.filter(pc.is_null(rows[spec.label_column]))
    n = unlabelled.num_rows
    parts = []
    for name in spec.drift_columns:
        column = unlabelled[name]
        numeric = _numeric(column.type) and name not in spec.text_features
        parts.append(pa.table({
            "model_name": pa.repeat(pa.scalar(spec.name, pa.string()), n),
            "model_version": pa.repeat(pa.scalar(version, pa.string()), n),
            "feature": pa.repeat(pa.scalar(name, pa.string()), n),
            "number": pc.cast(column, pa.float64()) if numeric else pa.nulls(n, pa.float64()),
            "value": pa.nulls(n, pa.string()) if numeric else pc.cast(column, pa.string()),
            "recorded_at": pa.repeat(pa.scalar(utcnow(), pa.timestamp("us")), n),
        }))
    tables.ensure(warehouse, tables.DRIFT_REFERENCE)
    return tables.append(warehouse, tables.DRIFT_REFERENCE, pa.concat_tables(parts))


def read_reference(warehouse: Warehouse, spec: MLModelSpec, version: str, schema: pa.Schema) -> pa.Table | None:
    """The reference `record_reference` kept for `version`, one column per drift feature
    (numbers where `schema`, the rows compared with it, has a number)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not warehouse.table_exists("ml", "drift_reference"):
        return None
    long = warehouse.query_arrow("select feature, number, value from ml.drift_reference "
                                 "where model_name = ? and model_version = ?", [spec.name, version])
    if long.num_rows == 0:
        return None
    columns = {}
    for name in spec.drift_columns:
        rows = long.filter(pc.equal(long["feature"], name))
        numeric = _numeric(schema.field(name).type) and name not in spec.text_features
        columns[name] = rows["number"] if numeric else rows["value"]
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:  # a feature the spec watches now that was not watched then
        return None
    return pa.table(columns)


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def write_report(warehouse: Warehouse, result: DriftResult) -> int:
    import pyarrow as pa

    from lakebox.warehouse.ops import utcnow

    n = len(result.features)
    ts = pa.timestamp("us")
    report = pa.table({
        "model_name": pa.array([result.model_name] * n, pa.string()),
        "feature": pa.array([f.feature for f in result.features], pa.string()),
        "method": pa.array([f.method for f in result.features], pa.string()),
        "statistic": pa.array([f.statistic for f in result.features], pa.float64()),
        "p_value": pa.array([f.p_value for f in result.features], pa.float64()),
        "threshold": pa.array([f.threshold for f in result.features], pa.float64()),
        "drifted": pa.array([f.drifted for f in result.features], pa.bool_()),
        "window_start": pa.array([result.window_start] * n, ts),
        "window_end": pa.array([result.window_end] * n, ts),
        "computed_at": pa.array([utcnow()] * n, ts),
    })
    tables.ensure(warehouse, tables.DRIFT_REPORT)
    return tables.append(warehouse, tables.DRIFT_REPORT, report)
