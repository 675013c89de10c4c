"""File-level rules, checked on a file's bytes before any row is read.

A file that breaks one of these (not UTF-8, empty, header only, a header that is not
exactly the contract's, a name dated in the future, blank lines) cannot be read safely
row by row, so its rows are not checked further: the file is quarantined as it is.
Each rule is one pass over the whole buffer (decode, a regex, a count), never per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import re

from lakebox.quality.contract import Contract
from lakebox.quality.gate import CheckResult

_BLANK_LINE = re.compile(rb"\n[ \t]*\r?(?=\n)")
MAX_LINES_REPORTED = 20


def check_file_bytes(
    data: bytes, contract: Contract, file_date: str | None, today: dt.date | None = None
) -> list[CheckResult]:
    """Failed file-level rules for one file (empty when the file may be read)."""
    if not data.strip():
        return [CheckResult("empty_file", None, False, 0, [], "the file is empty (0 bytes or only whitespace)")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.start + 8]
        return [CheckResult(
            "encoding", None, False, 1, [{"_line": line, "bytes": bad.hex(" ")}],
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
            "re-export the file as UTF-8",
        )]
    results: list[CheckResult] = []
    if file_date and dt.date.fromisoformat(file_date) > (today or dt.date.today()):
        results.append(CheckResult(
            "future_date", None, False, 0, [],
            f"the file is dated {file_date}, after today ({today or dt.date.today()}); a drop reports a day "
            "that has ended",
        ))
    header_line, _, body = text.lstrip("\ufeff").partition("\n")
    results += check_header(header_line.rstrip("\r"), contract)
    if not body.strip():
        results.append(CheckResult("header_only", None, False, 0, [], "the file has a header but no rows"))
        return results
    blank = [data.count(b"\n", 0, m.start()) + 2 for m in _BLANK_LINE.finditer(data.rstrip())]
    if blank:
        results.append(CheckResult(
            "ragged_rows", None, False, len(blank),
            [{"_line": n, "csv_line": ""} for n in blank[:MAX_LINES_REPORTED]],
            f"{len(blank)} blank line(s) inside the file",
        ))
    return results


def check_header(header_line: str, contract: Contract) -> list[CheckResult]:
    """The header must name exactly the contract's columns, in its order."""
    try:
        found = next(csv.reader([header_line]))
    except (csv.Error, StopIteration):
        found = []
    found = [name.strip() for name in found]
    expected = list(contract.names)
    if found == expected:
        return []
    results = [
        CheckResult("schema_drift", name, False, 0, [], f"missing column '{name}' (header: {','.join(found)})")
        for name in expected if name not in found
    ]
    results += [
        CheckResult("schema_drift", name, False, 0, [], f"unexpected column '{name}' (expected: {','.join(expected)})")
        for name in found if name not in expected
    ]
    if not results:
        moved = None
        if len(found) == len(expected):
            moved = next(e for e, f in zip(expected, found, strict=True) if e != f)
        results.append(CheckResult(
            "schema_drift", moved, False, 0, [],
            f"columns reordered or repeated: header {','.join(found)}, expected {','.join(expected)}",
        ))
    return results
