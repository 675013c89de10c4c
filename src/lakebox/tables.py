"""Every list the CLI prints, in one of three forms chosen by where it goes.

- A terminal: one line per row at any width. Ids and names are never cut or wrapped;
  when the row does not fit, the columns each table marks as expendable go first, in the
  order it gives, then free text is shortened with "…". Numbers are right-aligned with
  thousands separators.
- Anything else (a pipe, a file, CI): a header line, then one tab-separated line per row
  with every column and plain values, so `lakebox quarantine list | grep NAME` and
  `cut -f1` work. A table's title, when it has one, comes first as a `# ` line.
- `--json`: the rows as JSON objects, every column, values as stored.

Rich's own tables wrap every cell when the width runs out (run ids over five lines), so
lines are laid out here and rich only colours them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import orjson

Kind = Literal["id", "text", "number", "status", "time"]
GAP = 2  # spaces between columns on a terminal
MIN_TEXT = 12  # free text is not shortened below this many characters
STATUS_COLOURS = {"success": "green", "ok": "green", "open": "yellow", "partial": "yellow", "running": "yellow",
                  "failed": "red", "DRIFT": "red", "lost": "red"}


@dataclass(frozen=True)
class Column:
    """One column. `kind`: id and time (kept whole), text (may be shortened), number
    (right-aligned, separators; `digits` after the point), status (kept whole, coloured). `drop`: the
    order in which it goes on a narrow terminal (1 first); None: never dropped."""

    name: str
    key: str = ""
    kind: Kind = "text"
    drop: int | None = None
    digits: int = 0

    @property
    def json_key(self) -> str:
        return self.key or self.name.replace(" ", "_").replace("(", "").replace(")", "").lower()


@dataclass
class Table:
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    title: str = ""

    def records(self) -> list[dict[str, Any]]:
        return [{c.json_key: v for c, v in zip(self.columns, row, strict=True)} for row in self.rows]


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def show(table: Table, *, as_json: bool = False, err: bool = False) -> None:
    """Print `table` on stdout (stderr if `err`) in the form that suits where it goes."""
    stream = sys.stderr if err else sys.stdout
    if as_json:
        print_json(table.records())
    elif is_terminal(stream):
        _print_terminal(table, err)
    else:
        stream.write("".join(line + "\n" for line in plain_lines(table)))


def print_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, default=_json_value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def plain_lines(table: Table) -> list[str]:
    """The title as a `# ` line, the header, then one tab-separated line per row."""
    head = [f"# {_one_line(table.title)}"] if table.title else []
    return [*head, "\t".join(c.name for c in table.columns),
            *("\t".join(_plain(c, v) for c, v in zip(table.columns, row, strict=True)) for row in table.rows)]


def _plain(column: Column, value: Any) -> str:
    """A cell for a program to read: no separators, whole text on one line."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float | decimal.Decimal):
        return f"{value:.{column.digits}f}" if column.digits else f"{value:.6g}"
    return _one_line(str(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shown(column: Column, value: Any) -> str:
    """A cell as a person reads it."""
    if value is None:
        return ""
    if column.kind == "number" and isinstance(value, int | float | decimal.Decimal):
        return f"{value:,.{column.digits}f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return _one_line(str(value))


def layout(table: Table, width: int) -> tuple[list[int], list[int], list[list[str]]]:
    """(indexes of the columns shown, their widths, the cells) for a terminal `width` wide."""
    cells = [[_shown(c, v) for c, v in zip(table.columns, row, strict=True)] for row in table.rows]
    natural = [max([len(c.name), *(len(r[i]) for r in cells)]) for i, c in enumerate(table.columns)]
    shown = [i for i in range(len(table.columns)) if any(r[i] for r in cells)]  # an empty column says nothing

    def least(i: int) -> int:  # free text may shorten to MIN_TEXT (or its header)
        column = table.columns[i]
        return min(natural[i], max(MIN_TEXT, len(column.name))) if column.kind == "text" else natural[i]

    def total(indexes: list[int], width_of: Callable[[int], int]) -> int:
        return sum(width_of(i) for i in indexes) + GAP * (len(indexes) - 1)

    for i in sorted((i for i, c in enumerate(table.columns) if c.drop is not None),
                    key=lambda i: table.columns[i].drop or 0):
        if total(shown, least) <= width:
            break
        if i in shown:
            shown.remove(i)
    widths = dict(enumerate(natural))
    while total(shown, widths.__getitem__) > width:  # shorten the widest free text first
        wide = [i for i in shown if widths[i] > least(i)]
        if not wide:
            break  # ids alone are wider than the terminal: the line runs on, ids still whole
        widest = max(wide, key=lambda i: widths[i])
        widths[widest] -= min(widths[widest] - least(widest), total(shown, widths.__getitem__) - width)
    return shown, [widths[i] for i in shown], cells


def _fit(text: str, width: int, column: Column) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if column.kind == "number" else text.ljust(width)


def _print_terminal(table: Table, err: bool = False) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=err, highlight=False, soft_wrap=True)
    shown, widths, cells = layout(table, console.width)
    columns = [table.columns[i] for i in shown]
    if table.title:
        console.print(Text(table.title, style="bold"))
    gap = " " * GAP
    console.print(Text(gap.join(_fit(c.name, w, c) for c, w in zip(columns, widths, strict=True)).rstrip(),
                       style="bold underline"))
    for row in cells:
        line = Text()
        for n, (i, c, w) in enumerate(zip(shown, columns, widths, strict=True)):
            if n:
                line.append(gap)
            line.append(_fit(row[i], w, c), style=STATUS_COLOURS.get(row[i], "") if c.kind == "status" else "")
        line.rstrip()
        console.print(line)
    hidden = [c.name for i, c in enumerate(table.columns) if i not in shown and any(r[i] for r in cells)]
    if hidden:
        console.print(Text(f"(not shown at {console.width} columns: {', '.join(hidden)}; --json shows all)",
                           style="dim"))
