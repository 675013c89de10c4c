"""A request body as the Arrow table a model version takes, or a BadInput saying what was
expected: the column names and types of the version's signature (MLflow's, logged when it
was trained), as a caller sends them.

Bodies follow MLflow's scoring protocol: JSON with one of `dataframe_split`,
`dataframe_records`, `instances` or `inputs` (records, or a mapping of column to values), or
CSV with a header. Columns are converted whole by Arrow, never value by value in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

JSON_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# MLflow signature type -> the Arrow type the column is converted to
_ARROW = {"string": "string", "long": "int64", "integer": "int32", "double": "float64", "float": "float32",
          "boolean": "bool", "datetime": "timestamp[us]", "binary": "binary"}


class BadInput(ValueError):
    """A body the model cannot take: the message says what was expected (a 400)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as MLflow's signature names it: string, long, integer, double, boolean, datetime

    def arrow(self) -> pa.DataType:
        import pyarrow as pa

        text = _ARROW.get(self.type, "string")
        return pa.timestamp("us") if text == "timestamp[us]" else pa.type_for_alias(text)


def schema_of(signature: Any, features: tuple[str, ...]) -> tuple[Column, ...]:
    """The version's input columns from its MLflow signature (the spec's features, typed as
    strings, when it has none)."""
    inputs = getattr(getattr(signature, "inputs", None), "inputs", None)
    if not inputs:
        return tuple(Column(f, "string") for f in features)
    return tuple(Column(str(c.name), getattr(c.type, "name", str(c.type))) for c in inputs)


def expected(schema: tuple[Column, ...]) -> str:
    return ", ".join(f"{c.name} ({c.type})" for c in schema)


def parse(body: bytes, content_type: str, schema: tuple[Column, ...]) -> pa.Table:
    """The body's rows as a table with exactly `schema`'s columns and types."""
    if not body.strip():
        raise BadInput(f"empty body; expected JSON ({', '.join(JSON_KEYS)}) or CSV with columns {expected(schema)}")
    try:
        table = _csv(body, schema) if content_type.split(";", 1)[0].strip().lower() == "text/csv" else _json(
            body, schema)
    except BadInput as exc:
        if "expected columns" in str(exc):
            raise
        raise BadInput(f"{exc}; expected columns {expected(schema)}") from None
    if table.num_rows == 0:
        raise BadInput(f"no rows: send at least one; expected columns {expected(schema)}")
    return table


def _json(body: bytes, schema: tuple[Column, ...]) -> pa.Table:
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"not JSON ({exc}); send JSON with one of {', '.join(JSON_KEYS)}, or CSV with "
                       "Content-Type: text/csv") from None
    keys = sorted(doc) if isinstance(doc, dict) else []
    if len(keys) != 1 or keys[0] not in JSON_KEYS:
        found = f"keys {', '.join(keys)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise BadInput(f"expected a JSON object with exactly one of {', '.join(JSON_KEYS)}; found {found}")
    key, value = keys[0], doc[keys[0]]
    if key == "dataframe_split":
        return _split(value, schema)
    if isinstance(value, dict) and key in ("instances", "inputs"):
        return _columns(value, schema, key)
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise BadInput(f"{key}: expected a list of records (objects of column: value)"
                       f"{' or an object of column: values' if key != 'dataframe_records' else ''}")
    return _records(value, schema, key)


def _split(value: Any, schema: tuple[Column, ...]) -> pa.Table:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or not isinstance(
            value.get("data"), list):
        raise BadInput("dataframe_split: expected {\"columns\": [...], \"data\": [[...], ...]}")
    names, rows = value["columns"], value["data"]
    _check_names(names, schema, "dataframe_split")
    if not all(isinstance(r, list) for r in rows) or len(set(map(len, rows))) > 1 or (
            rows and len(rows[0]) != len(names)):
        raise BadInput(f"dataframe_split: every row of data must be a list of {len(names)} values, one per column")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return _typed(dict(zip(names, columns, strict=True)), schema, "dataframe_split")


def _records(records: list[dict[str, Any]], schema: tuple[Column, ...], key: str) -> pa.Table:
    import pyarrow as pa

    names = list(set().union(*map(dict.keys, records))) if records else [c.name for c in schema]
    _check_names(names, schema, key)
    struct = pa.struct([pa.field(c.name, pa.string() if c.type == "datetime" else c.arrow()) for c in schema])
    try:
        table = pa.Table.from_struct_array(pa.array(records, struct))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # name the column that does not convert: only on this error path, column by column
        return _typed({c.name: [r.get(c.name) for r in records] for c in schema}, schema, key)
    return _finish(table, schema, key)


def _columns(value: dict[str, Any], schema: tuple[Column, ...], key: str) -> pa.Table:
    _check_names(list(value), schema, key)
    if not all(isinstance(v, list) for v in value.values()) or len({len(v) for v in value.values()}) > 1:
        raise BadInput(f"{key}: expected an object of column: list of values, every list as long")
    return _typed(value, schema, key)


def _check_names(names: list[Any], schema: tuple[Column, ...], where: str) -> None:
    wanted = [c.name for c in schema]
    missing = [n for n in wanted if n not in names]
    extra = [str(n) for n in names if n not in wanted]
    if missing or extra or len(names) != len(set(map(str, names))):
        found = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                      f"unexpected {', '.join(extra)}" if extra else "") if x) or "duplicate columns"
        raise BadInput(f"{where}: {found}; expected columns {expected(schema)}")


def _typed(columns: dict[str, Any], schema: tuple[Column, ...], where: str) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for col in schema:
        try:
            if col.type == "datetime":
                arrays.append(pa.array(columns[col.name], pa.string()))
            else:
                arrays.append(pa.array(columns[col.name], col.arrow()))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise BadInput(f"{where}: column {col.name} expects {col.type} values ({' '.join(str(exc).split())[:160]}); "
                           f"expected columns {expected(schema)}") from None
    return _finish(pa.Table.from_arrays(arrays, names=[c.name for c in schema]), schema, where)


def _finish(table: pa.Table, schema: tuple[Column, ...], where: str) -> pa.Table:
    """Datetimes parsed from their text; nulls refused outside string columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, col in enumerate(schema):
        column = table.column(i)
        if col.type == "datetime" and not pa.types.is_timestamp(column.type):
            try:
                table = table.set_column(i, col.name, pc.cast(column, pa.timestamp("us")))
            except pa.ArrowException:
                raise BadInput(f"{where}: column {col.name} expects datetime values (ISO 8601 text, such as "
                               f"2026-01-31T12:00:00); expected columns {expected(schema)}") from None
        if col.type != "string" and column.null_count:
            raise BadInput(f"{where}: column {col.name} has {column.null_count} null value(s), expects {col.type}; "
                           f"expected columns {expected(schema)}")
    return table


def _csv(body: bytes, schema: tuple[Column, ...]) -> pa.Table:
    import pyarrow as pa
    from pyarrow import csv

    header = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    _check_names([h.strip().strip('"') for h in header], schema, "CSV")
    types = {c.name: (pa.string() if c.type == "datetime" else c.arrow()) for c in schema}
    try:
        table = csv.read_csv(pa.BufferReader(body), convert_options=csv.ConvertOptions(
            column_types=types, include_columns=[c.name for c in schema], strings_can_be_null=False))
    except pa.ArrowException as exc:
        raise BadInput(f"CSV: {' '.join(str(exc).split())[:200]}; expected columns {expected(schema)}") from None
    return _finish(table, schema, "CSV")
