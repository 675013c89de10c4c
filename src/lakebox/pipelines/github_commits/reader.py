"""Reads landed list-commits pages (bare JSON arrays of nested objects) as flat rows.

Each contract column comes from one field of GitHub's commit object (`SOURCE_FIELDS`).
A page is read with the types it itself carries, so a field GitHub stops sending or sends
with another type shows up in the gate as schema drift, not as a quiet null: a missing
required field leaves its column out of the relation (drift: "missing field"), a field that
became an object is read as JSON (drift: "retyped"). Optional fields that older servers do
not send (verification, comment_count, the user objects) read as null when absent.

The repository is not in a commit object: it is what the connector asked for, recorded as
`resource` in the landed batch's manifest. Pages whose manifest says nothing fall back to
the repository named in each commit's API `url` (`.../repos/{owner}/{name}/commits/{sha}`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from lakebox.pipelines.github_commits.contract import CONTRACT
from lakebox.quality.contract import DUCKDB_CAST_TYPES
from lakebox.warehouse.sql import literal, quote

MAX_PAGE_BYTES = 64 << 20
FILE_COLUMN = "lakebox_source_file"
URL_COLUMN = "lakebox_commit_url"
REPO_FROM_URL = r"/repos/([^/]+/[^/]+)/commits/"
RESOURCE_META_KEY = "resource"  # the manifest's meta entry naming the repository a page was fetched for

# column -> (path in the commit object, required). A required field missing from a page is drift.
SOURCE_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "sha": (("sha",), True),
    "author_name": (("commit", "author", "name"), True),
    "author_email": (("commit", "author", "email"), True),
    "authored_at": (("commit", "author", "date"), True),
    "committer_name": (("commit", "committer", "name"), True),
    "committer_email": (("commit", "committer", "email"), True),
    "committed_at": (("commit", "committer", "date"), True),
    "message": (("commit", "message"), True),
    "author_login": (("author", "login"), False),
    "committer_login": (("committer", "login"), False),
    "verified": (("commit", "verification", "verified"), False),
    "comment_count": (("commit", "comment_count"), False),
    "html_url": (("html_url",), False),
    URL_COLUMN: (("url",), False),
}
PARENTS = ("parents",)  # -> parent_count, parent_shas


def manifest_uri(uri: str) -> str:
    """The manifest the lake writes beside each landed object."""
    return uri.rsplit(".", 1)[0] + ".manifest.json"


class CommitPageReader:
    """A `BatchReader` (see `lakebox.ingest.batches`) for GitHub list-commits pages.

    `prepare` reads several pages at once: one json_structure pass over all of them (split
    over threads), then pages of the same shape are parsed together with their fields
    declared (DuckDB spreads files over its threads) into one flattened scratch table, and
    their manifests are read in one query for the repository. `select_sql` then picks one
    page's rows. A page of another shape, or one that cannot be read, is read on its own by
    `select_sql`, so the bad page is named alone.
    """

    def __init__(self) -> None:
        self._repos: dict[str, str] = {}
        self._shapes: dict[str, Any] = {}
        self._parsed: dict[str, tuple[str, tuple[str, ...]]] = {}  # uri -> (scratch table, its columns)
        self._tables: list[str] = []

    def prepare(self, con: Any, uris: list[str]) -> None:
        import duckdb

        for table in self._tables:
            con.execute(f"drop table if exists {table}")
        self._tables, self._parsed = [], {}
        try:
            shapes = _shapes_in_parallel(con, uris)
        except duckdb.Error:
            return  # an unreadable page among them: select_sql reads each alone and names it
        self._shapes.update(shapes)
        self._repos.update(_manifest_repos(con, uris))
        groups: dict[str, list[str]] = {}
        for uri, shape in shapes.items():
            if isinstance(shape, dict):
                groups.setdefault(orjson.dumps(_needed(shape), option=orjson.OPT_SORT_KEYS).decode(), []).append(uri)
        for number, members in enumerate(groups.values()):
            shape = shapes[members[0]]
            table = f"lakebox_commit_pages_{number}"
            columns = _present_columns(shape)
            try:
                con.execute(
                    f"create or replace temp table {table} as select {_flat_exprs(shape)}, {FILE_COLUMN} "
                    f"from {_read_pages(members, shape, filename=True)}"
                )
            except duckdb.Error:
                continue  # read one by one, so the bad page is named alone
            self._tables.append(table)
            self._parsed.update((uri, (table, columns)) for uri in members)

    def select_sql(self, con: Any, uri: str) -> str:
        repo = self._repos.pop(uri, None)
        if repo is None and uri not in self._shapes:
            repo = _manifest_repos(con, [uri]).get(uri)
        if uri in self._parsed:
            table, columns = self._parsed.pop(uri)
            self._shapes.pop(uri, None)
            return _select_flat(table, columns, repo) + f" where {FILE_COLUMN} = {literal(uri)}"
        shape = self._shapes.pop(uri) if uri in self._shapes else _shape_of(con, uri)
        if not isinstance(shape, dict):
            if shape == ["NULL"] or shape == []:  # an empty page: no commits since the watermark
                return _empty_relation()
            # not a list of commit objects: let DuckDB's own reading say what is wrong
            return (f"select * from read_json({literal(uri)}, format = 'array', "
                    f"maximum_object_size = {MAX_PAGE_BYTES})")
        inner = f"(select {_flat_exprs(shape)} from {_read_pages([uri], shape)})"
        return _select_flat(inner, _present_columns(shape), repo)


_SHAPE = "json_structure(content)"


def _shape_of(con: Any, uri: str) -> Any:
    structure = con.execute(f"select {_SHAPE} from read_text({literal(uri)})").fetchall()[0][0]
    return _record_shape(structure)


def _record_shape(structure: str | None) -> Any:
    """The merged fields of a page's commits (a dict); else the page's shape, never a dict."""
    shape = orjson.loads(structure) if structure else None
    if isinstance(shape, list) and shape and isinstance(shape[0], dict):
        return shape[0]
    return shape if not isinstance(shape, dict) else "OBJECT"


def _shapes_in_parallel(con: Any, uris: list[str]) -> dict[str, Any]:
    """json_structure of each page; DuckDB reads text files on one thread per query, so the
    pages are split over one cursor per core."""
    workers = max(1, min(len(uris), os.cpu_count() or 1, 4))

    def shapes(part: list[str]) -> list[tuple[str, Any]]:
        listed = ", ".join(literal(u) for u in part)
        rows = con.cursor().execute(f"select filename, {_SHAPE} from read_text([{listed}])").fetchall()
        return [(name, _record_shape(structure)) for name, structure in rows]

    with ThreadPoolExecutor(workers) as pool:
        return dict(row for part in pool.map(shapes, [uris[i::workers] for i in range(workers)]) for row in part)


def _manifest_repos(con: Any, uris: list[str]) -> dict[str, str]:
    """uri -> the `resource` its manifest records; pages without a readable manifest are left out."""
    import duckdb

    by_manifest = {manifest_uri(u): u for u in uris}
    listed = ", ".join(literal(m) for m in by_manifest)
    try:
        rows = con.execute(
            f"select filename, json_extract_string(json, '$.meta.{RESOURCE_META_KEY}') "
            f"from read_json_objects([{listed}], filename = true)"
        ).fetchall()
    except duckdb.Error:
        if len(uris) == 1:
            return {}
        return {uri: repo for u in uris for uri, repo in _manifest_repos(con, [u]).items()}
    return {by_manifest[name]: repo for name, repo in rows if repo and name in by_manifest}


def _lookup(shape: Any, path: tuple[str, ...]) -> Any:
    """The json_structure type at `path`: a type name, a dict, a list; None when absent."""
    node = shape
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _needed(shape: dict[str, Any]) -> dict[str, Any]:
    """The part of a page's shape the flattening reads: what the page's column types depend on."""
    out: dict[str, Any] = {}
    for path, _ in (*SOURCE_FIELDS.values(), (PARENTS, True)):
        kind = _lookup(shape, path)
        if kind is None:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _leaf_type(kind) if path != PARENTS else ("LIST" if isinstance(kind, list) else kind)
    return out


def _leaf_type(kind: Any) -> str:
    if isinstance(kind, (dict, list)) or kind == "JSON":
        return "JSON"  # an object or list where a value was expected: drift, reported as such
    return "VARCHAR" if kind == "NULL" else str(kind)


def _declared_type(node: Any) -> str:
    if isinstance(node, dict):
        return "STRUCT(" + ", ".join(f"{quote(k)} {_declared_type(v)}" for k, v in node.items()) + ")"
    if node == "LIST":
        return "JSON[]"
    return str(node)


def _read_pages(uris: list[str], shape: dict[str, Any], filename: bool = False) -> str:
    needed = _needed(shape)
    columns = "{" + ", ".join(f"{literal(k)}: {literal(_declared_type(v))}" for k, v in needed.items()) + "}"
    listed = ", ".join(literal(u) for u in uris)
    extra = f", filename = {literal(FILE_COLUMN)}" if filename else ""
    return (f"read_json([{listed}], format = 'array', maximum_object_size = {MAX_PAGE_BYTES}, "
            f"columns = {columns}{extra})")


def _present_columns(shape: dict[str, Any]) -> tuple[str, ...]:
    """Contract columns this page can fill: a required field it lacks leaves its column out."""
    present = [name for name, (path, required) in SOURCE_FIELDS.items()
               if not required or _lookup(shape, path) is not None]
    if _lookup(shape, PARENTS) is not None:
        present += ["parent_count", "parent_shas"]
    return tuple(present)


def _flat_exprs(shape: dict[str, Any]) -> str:
    """The SELECT list that flattens one commit object into the contract's columns."""
    needed, present = _needed(shape), _present_columns(shape)
    exprs = []
    for name, (path, _) in SOURCE_FIELDS.items():
        if name not in present:
            continue
        if _lookup(needed, path) is None:  # optional and absent, or under an object that is always null
            exprs.append(f"cast(null as {_null_type(name)}) as {quote(name)}")
        else:
            exprs.append(".".join(quote(p) for p in path) + f" as {quote(name)}")
    if "parent_count" in present:
        parents = quote(PARENTS[0])
        exprs.append(f"len({parents}) as parent_count")
        exprs.append(f"cast(to_json(list_transform({parents}, lambda p: json_extract_string(p, '$.sha'))) as varchar) "
                     "as parent_shas")
    return ", ".join(exprs)


def _null_type(name: str) -> str:
    if name == URL_COLUMN:
        return "varchar"
    return DUCKDB_CAST_TYPES[CONTRACT.column(name).type]


def _select_flat(relation: str, columns: tuple[str, ...], repo: str | None) -> str:
    """One page's rows in contract order, with its repository."""
    repo_expr = (literal(repo) if repo else
                 f"nullif(regexp_extract({URL_COLUMN}, {literal(REPO_FROM_URL)}, 1), '')")
    select = []
    for name in CONTRACT.names:
        if name == "repo":
            select.append(f"{repo_expr} as repo")
        elif name in columns:
            select.append(quote(name))
    return f"select {', '.join(select)} from {relation}"


def _empty_relation() -> str:
    columns = ", ".join(f"cast(null as {DUCKDB_CAST_TYPES[c.type]}) as {quote(c.name)}" for c in CONTRACT.columns)
    return f"select {columns} where false"
