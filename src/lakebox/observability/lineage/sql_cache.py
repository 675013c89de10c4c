"""dbt's compiled SQL read with sqlglot: the tables a model reads and, per output column, the
input columns it comes from. Parsing every model each run would cost more than the rest of
lineage, so results are kept by checksum (of the SQL, and of the input tables' columns for
column lineage) in process and in the machine's cache (LAKEBOX_CACHE_DIR, else the home); a
run whose models did not change does not import sqlglot at all."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from lakebox.settings import Settings

_MEMORY: dict[str, Any] = {}
_LOADED: set[Path] = set()
DIRECT_RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}


class Unparsable(Exception):
    """sqlglot could not read the SQL: the model gets table-level lineage only."""


def checksum(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def cache_file(settings: Settings) -> Path:
    """Shared by every home of the machine (keys are checksums), like dbt's parse: a new
    home does not parse the bundled models again."""
    if settings.cache_dir is not None:
        return settings.cache_dir / "lineage" / "sql.json"
    return settings.home / "lineage" / "sql_cache.json"


class SqlCache:
    """The analyses of one home, loaded once per process and written back when they grew."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if self.path not in _LOADED and self.path.exists():
            try:
                _MEMORY.update(orjson.loads(self.path.read_bytes()))
            except orjson.JSONDecodeError:
                pass  # a torn cache costs a parse, never a wrong answer: keys are checksums
        _LOADED.add(self.path)
        self.grew = False

    def tables(self, sql: str) -> list[str]:
        key = "t:" + checksum(sql)
        if key not in _MEMORY:
            _MEMORY[key] = _tables(sql)
            self.grew = True
        found = _MEMORY[key]
        if found is None:
            raise Unparsable
        return list(found)

    def columns(self, sql: str, schema: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any]:
        """{"fields": {out: [[table, column, subtype], ...]}, "dataset": [[table, column, subtype], ...]}."""
        key = "c:" + checksum(sql, orjson.dumps(sorted((t, list(c)) for t, c in schema.items())).decode())
        if key not in _MEMORY:
            _MEMORY[key] = _columns(sql, schema)
            self.grew = True
        found = _MEMORY[key]
        if found is None:
            raise Unparsable
        return dict(found)

    def save(self) -> None:
        if self.grew:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(_MEMORY))
            tmp.replace(self.path)
            self.grew = False


# A model's SQL parsed for its tables, kept for the column analysis that follows in the same
# process (it qualifies the tree in place): each model is parsed once.
_PARSED: dict[str, Any] = {}


def _parse(sql: str) -> Any:
    import sqlglot

    tree = _PARSED.pop(checksum(sql), None)
    return tree if tree is not None else sqlglot.parse_one(sql, read="duckdb")


def _tables(sql: str) -> list[str] | None:
    import sqlglot
    from sqlglot import exp

    try:
        tree = _parse(sql)
    except sqlglot.errors.SqlglotError:
        return None
    _PARSED[checksum(sql)] = tree
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name not in ctes})


def _columns(sql: str, schema: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any] | None:
    """Every output column's lineage from one walk of one qualified tree: `lineage(None, ...)`
    shares its work across columns, and untrimmed selects spare sqlglot a deep copy per step."""
    import sqlglot
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    tables: dict[str, object] = {}
    for table, cols in schema.items():
        if cols:  # a table not built here: its columns are resolved as the SQL names them
            db, name = table.split(".", 1)
            tables.setdefault(db, {})[name] = dict(cols)  # type: ignore[index]
    try:
        tree: Any = qualify(_parse(sql), schema=tables, dialect="duckdb", validate_qualify_columns=False,
                            catalog=None)
        scope = build_scope(tree)
        if scope is None:
            return None
        nodes = lineage(None, tree, schema=tables, dialect="duckdb", scope=scope, copy=False, trim_selects=False)
        assert isinstance(nodes, dict)
        fields = {out: [list(leaf) for leaf in sorted(set(_leaves(node, "IDENTITY")))] for out, node in nodes.items()}
        dataset = sorted(set(_indirect(scope)))
    except sqlglot.errors.SqlglotError:
        return None
    return {"fields": fields, "dataset": [list(v) for v in dataset]}


def _leaves(node: Any, kind: str) -> Iterator[tuple[str, str, str]]:
    """(schema.table, column, subtype) of each source column under a lineage node; the
    subtype is the strongest transformation met on the way down."""
    from sqlglot import exp

    expression = node.expression
    if isinstance(expression, exp.Table):
        column = node.name.split(".")[-1].strip('"')
        if column != "*":  # a star over a table whose columns are unknown names no column
            yield f"{expression.db}.{expression.name}", column, kind
        return
    inner = expression.this if isinstance(expression, exp.Alias) else expression
    here = ("AGGREGATION" if inner.find(exp.AggFunc) else
            "IDENTITY" if isinstance(inner, exp.Column) else "TRANSFORMATION")
    kind = max(kind, here, key=DIRECT_RANK.__getitem__)
    for child in node.downstream:
        yield from _leaves(child, kind)


def _indirect(root: Any) -> Iterator[tuple[str, str, str]]:
    """Source columns that shape every row without being selected: GROUP BY, WHERE, JOIN ON."""
    from sqlglot import exp

    for scope in root.traverse():
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        clauses = [("GROUP_BY", select.args.get("group")), ("FILTER", select.args.get("where")),
                   *(("JOIN", j.args.get("on")) for j in select.args.get("joins") or [])]
        for subtype, clause in clauses:
            for column in (clause.find_all(exp.Column) if clause is not None else ()):
                yield from ((t, c, subtype) for t, c in _resolve(scope, column.table, column.name))


def _resolve(scope: Any, table: str, column: str) -> Iterator[tuple[str, str]]:
    """The source table columns behind `table.column` in `scope`, through CTEs and subqueries."""
    from sqlglot import exp

    source = scope.sources.get(table)
    if isinstance(source, exp.Table):
        yield f"{source.db}.{source.name}", column
    elif source is not None and isinstance(source.expression, exp.Select):
        for projection in source.expression.selects:
            if projection.alias_or_name == column:
                for inner in projection.find_all(exp.Column):
                    yield from _resolve(source, inner.table, inner.name)
