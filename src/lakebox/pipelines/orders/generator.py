"""Deterministic synthetic orders, and the exact JSON pages the orders API sends.

The data is a timeline. Order ``i`` (id ``ORD-{i+1}``) is created at a time that grows with
``i`` and never depends on how many orders are asked for; every field comes from its own
random stream (``np.random.default_rng([seed, FIELD])``), so order ``i`` is the same in
every dataset of the same seed. The business grows: a few orders a day at
``TIMELINE_START`` (2026-03-02), about 100 a day after a month, a million a day when the
timeline reaches ``TIMELINE_ANCHOR`` (2026-06-30) at ten million orders. So 1000 orders
span about 33 days and 100k about 76.

About 30% of orders are updated once, hours to days after creation (paid, shipped,
cancelled or refunded; the amount never changes). A dataset of ``count`` orders is the
state of the world at its "now", the creation time of its last order: an update shows only
when it happened by then, else the order is still ``placed`` with ``updated_at ==
created_at``. Hence ``generate_orders(1100, s)`` holds every order of
``generate_orders(1000, s)``, some of them updated later, plus 100 new ones: this is how
tests and benchmarks make "new and updated orders" between two runs.

Timestamps are whole seconds, stored as ``timestamp('us', tz='UTC')``. Ids are zero-padded
to 7 digits (orders) and 5 (customers), wider when ``count`` needs it; ids are therefore
prefix-stable while both datasets hold fewer than 10M orders (500k for customer ids).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakebox.errors import ConfigError

STATUSES: Final = ("placed", "paid", "shipped", "cancelled", "refunded")
CURRENCIES: Final = ("USD", "EUR", "GBP")
COLUMNS: Final = ("order_id", "customer_id", "amount", "currency", "status", "created_at", "updated_at")
TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")

TIMELINE_START: Final = datetime(2026, 3, 2, tzinfo=UTC)
TIMELINE_ANCHOR: Final = datetime(2026, 6, 30, tzinfo=UTC)

_START_S: Final = int(TIMELINE_START.timestamp())
# created_at(i) = start + _SPAN_DAYS * ln(1 + i / _GROWTH_ORDERS): the anchor at 10M orders.
_GROWTH_ORDERS: Final = 32.0
_SPAN_DAYS: Final = (TIMELINE_ANCHOR - TIMELINE_START).days / math.log1p(10_000_000 / _GROWTH_ORDERS)

_AMOUNT_SHAPE: Final = 0.45  # log-odds scale: amounts spread about 2x either way
_UPDATE_SHARE: Final = 0.30
_UPDATE_STATUS_SHARES: Final = (0.45, 0.30, 0.15, 0.10)  # paid, shipped, cancelled, refunded
_UPDATE_MIN_S: Final = 3600
_UPDATE_MEAN_S: Final = 36 * 3600
_UPDATE_MAX_S: Final = 14 * 86400
_CURRENCY_SHARES: Final = (0.80, 0.12, 0.08)
_MIN_CUSTOMERS: Final = 50
_ORDERS_PER_CUSTOMER: Final = 5

# One random stream per field keeps each field of order i independent of every other
# field and of the dataset size.
_F_CREATED, _F_CUSTOMER, _F_AMOUNT, _F_CURRENCY = 1, 2, 3, 4
_F_HAS_UPDATE, _F_UPDATE_DELAY, _F_UPDATE_STATUS = 5, 6, 7

_ORDER_ID = re.compile(r"ORD-(\d{1,18})")
_ISO_TEMPLATE: Final = np.frombuffer(b"0000-00-00T00:00:00Z", dtype=np.uint8)
_DIGIT_BLOCK_ROWS: Final = 1 << 16
_ISO_DIGIT_COLUMNS: Final = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]


def generate_orders(count: int, seed: int) -> pa.Table:
    """The current state of ``count`` orders, sorted by (updated_at, order_id)."""
    if count < 0 or seed < 0:
        raise ConfigError(f"orders generator: count and seed must be >= 0, got count={count} seed={seed}")
    # numpy and arrow release the GIL, so two threads nearly halve the time on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        timeline = pool.submit(_timeline, count, seed)
        customer, cents, currency = _attributes(count, seed)
        created, updated, status = timeline.result()
        # Rows are in order_id order, so a stable sort on updated_at gives (updated_at, order_id).
        order = np.argsort(updated, kind="stable")
        order_digits = max(7, len(str(count)))
        customer_digits = max(5, len(str(_customer_pool(np.array([count - 1]))[0])))
        builders: dict[str, Callable[[], pa.Array]] = {
            "order_id": lambda: _fixed_width_strings(_prefixed_digits(b"ORD-", order + 1, order_digits)),
            "customer_id": lambda: _fixed_width_strings(_prefixed_digits(b"CUST-", customer[order], customer_digits)),
            "amount": lambda: _numeric(cents[order] / 100.0, pa.float64()),
            "currency": lambda: _codes_to_strings(currency[order], CURRENCIES),
            "status": lambda: _codes_to_strings(status[order], STATUSES),
            "created_at": lambda: _numeric(created[order] * 1_000_000, TIMESTAMP_TYPE),
            "updated_at": lambda: _numeric(updated[order] * 1_000_000, TIMESTAMP_TYPE),
        }
        columns = {name: pool.submit(build) for name, build in builders.items()}
        return pa.table({name: column.result() for name, column in columns.items()})


def page_bytes(table: pa.Table, start: int, limit: int) -> bytes:
    """The JSON body the API sends for rows [start, start+limit) of a generated table.

    ``next_cursor`` is null when no row follows the page. Values are generated ids, codes
    and timestamps, so no string needs JSON escaping.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    start = max(0, min(start, table.num_rows))
    end = min(start + limit, table.num_rows)
    page = table.slice(start, end - start)
    next_cursor = b"null"
    if end < table.num_rows:
        last = table.slice(end - 1, 1)
        updated_s = int(last.column("updated_at").cast(pa.int64())[0].as_py()) // 1_000_000
        next_cursor = b'"' + encode_cursor(updated_s, last.column("order_id")[0].as_py()).encode() + b'"'
    return b'{"records":[' + _records_json(page) + b'],"next_cursor":' + next_cursor + b"}"


def encode_cursor(updated_at_s: int, order_id: str) -> str:
    """An opaque cursor for the position (updated_at, order_id) of the last row returned."""
    raw = f"{iso_utc(updated_at_s)}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(updated_at epoch seconds, order number) of a cursor; ValueError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cursor {cursor!r} is not valid base64") from exc
    updated_at, sep, order_id = raw.partition("|")
    match = _ORDER_ID.fullmatch(order_id)
    if not sep or match is None:
        raise ValueError(f"cursor {cursor!r} does not hold a position (updated_at, order_id)")
    return parse_iso_utc(updated_at), int(match.group(1))


def parse_iso_utc(text: str) -> int:
    """Epoch seconds (floored) of an ISO-8601 time; a time without offset is UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return math.floor(moment.timestamp())
    except OverflowError as exc:
        raise ValueError(f"{text!r} is out of range") from exc


def iso_utc(epoch_s: int) -> str:
    """'2026-03-01T12:34:56Z' for epoch seconds."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeline(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """created_at, updated_at (epoch seconds) and status code of each order as of "now"."""
    index = np.arange(count, dtype=np.int64)
    offset_days = _SPAN_DAYS * np.log1p((index + _uniform(seed, _F_CREATED, count)) / _GROWTH_ORDERS)
    created = _START_S + (offset_days * 86400).astype(np.int64)
    now = int(created[-1]) if count else _START_S

    delay = _UPDATE_MIN_S - _UPDATE_MEAN_S * np.log1p(-_uniform(seed, _F_UPDATE_DELAY, count))
    updated = created + np.minimum(delay, _UPDATE_MAX_S).astype(np.int64)
    visible = (_uniform(seed, _F_HAS_UPDATE, count) < _UPDATE_SHARE) & (updated <= now)
    status = (_pick(_uniform(seed, _F_UPDATE_STATUS, count), _UPDATE_STATUS_SHARES) + 1) * visible
    return created, np.where(visible, updated, created), status


def _attributes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customer number, amount in cents and currency code of each order."""
    pool = _customer_pool(np.arange(count, dtype=np.int64))
    customer = (_uniform(seed, _F_CUSTOMER, count) * pool).astype(np.int32) + 1

    # Log-logistic amounts around a median of 45.
    odds = _uniform(seed, _F_AMOUNT, count)
    odds /= 1.0 - odds
    cents = np.rint(np.clip(45.0 * odds**_AMOUNT_SHAPE, 1.0, 5000.0) * 100).astype(np.int32)

    return customer, cents, _pick(_uniform(seed, _F_CURRENCY, count), _CURRENCY_SHARES)


def _customer_pool(index: np.ndarray) -> np.ndarray:
    """How many customers exist when order ``index`` is placed: the business grows."""
    pool: np.ndarray = np.maximum(_MIN_CUSTOMERS, (index + 1) // _ORDERS_PER_CUSTOMER)
    return pool


def _uniform(seed: int, field: int, count: int) -> np.ndarray:
    # Generator.random fills sequentially, one draw per value: the first n values are the
    # same whatever count is, which is what keeps datasets prefix-stable.
    return np.random.default_rng([seed, field]).random(count)


def _pick(uniform: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    """Category codes 0..len(shares)-1 drawn with the given shares."""
    codes = np.zeros(len(uniform), dtype=np.int8)
    for edge in np.cumsum(shares)[:-1]:
        codes += uniform >= edge
    return codes


def _codes_to_strings(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(_numeric(codes), _strings(names)).cast(pa.string())


def _numeric(values: np.ndarray, kind: pa.DataType | None = None) -> pa.Array:
    """A NumPy array as Arrow, without a copy. Not pa.array(): given NumPy (or a list) it
    imports pandas to rule out a categorical, ~0.4 s of a run that serves a few pages."""
    values = np.ascontiguousarray(values)
    kind = kind or pa.from_numpy_dtype(values.dtype)
    if values.dtype.itemsize * 8 != kind.bit_width:
        raise TypeError(f"{values.dtype} values do not fit Arrow {kind} bit for bit")
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


_NUMPY_TYPES: Final = {pa.int64(): np.int64, pa.int32(): np.int32, pa.float64(): np.float64}


def as_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A null-free int64/int32/float64 Arrow column as NumPy, read from its buffer (see
    `_numeric` for why not `to_numpy()`, which also imports pandas)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    dtype = _NUMPY_TYPES.get(array.type)
    if dtype is None or array.null_count:
        raise TypeError(f"as_numpy takes a null-free int64, int32 or float64 column, not {array.type}")
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset:array.offset + len(array)]


def _text(value: str) -> pa.Scalar:
    """A string as an Arrow scalar for compute functions, which would make a plain str one
    by way of pa.array (see `_numeric`)."""
    return _strings((value,))[0]


def _strings(names: tuple[str, ...]) -> pa.Array:
    """A few Python strings as an Arrow string array (see `_numeric` for why not pa.array)."""
    encoded = [name.encode() for name in names]
    offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int32)
    return pa.StringArray.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))


def _records_json(page: pa.Table) -> bytes:
    """Each row as a JSON object followed by ',', joined, last comma dropped: vectorized."""
    if page.num_rows == 0:
        return b""
    cents = np.rint(as_numpy(page.column("amount")) * 100).astype(np.int64)
    dollars, rest = np.divmod(cents, 100)
    amount = pc.binary_join_element_wise(
        _numeric(dollars).cast(pa.string()), _fixed_width_strings(_prefixed_digits(b".", rest, 2)), _text("")
    )
    pieces = [
        '{"order_id":"', page.column("order_id"),
        '","customer_id":"', page.column("customer_id"),
        '","amount":', amount,
        ',"currency":"', page.column("currency"),
        '","status":"', page.column("status"),
        '","created_at":"', _iso_strings(page.column("created_at")),
        '","updated_at":"', _iso_strings(page.column("updated_at")),
        '"},',
    ]  # fmt: skip
    joined = pc.binary_join_element_wise(
        *(piece.combine_chunks() if isinstance(piece, pa.ChunkedArray) else _text(piece) if isinstance(piece, str)
          else piece for piece in pieces), _text(""))
    offset_type = np.int64 if pa.types.is_large_string(joined.type) else np.int32
    offsets = np.frombuffer(joined.buffers()[1], dtype=offset_type)[joined.offset : joined.offset + len(joined) + 1]
    return memoryview(joined.buffers()[2])[int(offsets[0]) : int(offsets[-1]) - 1].tobytes()


def _iso_strings(column: pa.ChunkedArray) -> pa.Array:
    epoch_s = as_numpy(column.cast(pa.int64())) // 1_000_000
    days, second_of_day = np.divmod(epoch_s, 86400)
    # Civil date from days since 1970-01-01 (H. Hinnant's algorithm), vectorized.
    z = days + 719468
    era = z // 146097
    day_of_era = z - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = np.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    year = year_of_era + era * 400 + (month <= 2)
    hour, second_of_hour = np.divmod(second_of_day, 3600)
    minute, second = np.divmod(second_of_hour, 60)

    # YYYYMMDDhhmmss as two numbers, written as digits, then spread over the template.
    digits = np.empty((len(epoch_s), 14), dtype=np.uint8)
    _write_digits(digits, 8, year * 10_000 + month * 100 + day, 8)
    _write_digits(digits, 14, hour * 10_000 + minute * 100 + second, 6)
    out = np.empty((len(epoch_s), len(_ISO_TEMPLATE)), dtype=np.uint8)
    out[:] = _ISO_TEMPLATE
    out[:, _ISO_DIGIT_COLUMNS] = digits
    return _fixed_width_strings(out)


def _prefixed_digits(prefix: bytes, numbers: np.ndarray, digits: int) -> np.ndarray:
    """Rows of ``prefix`` + zero-padded ``numbers`` as a (n, width) uint8 matrix."""
    out = np.empty((len(numbers), len(prefix) + digits), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    _write_digits(out, out.shape[1], numbers, digits)
    return out


def _write_digits(out: np.ndarray, end: int, values: np.ndarray, digits: int) -> None:
    """Zero-padded decimal ``values`` into columns [end-digits, end) of ``out``."""
    # Blocks of rows that stay in cache, in int32 when values fit: 5x faster than one pass.
    dtype: type[np.signedinteger[Any]] = np.int32 if values.size == 0 or int(values.max()) < 2**31 else np.int64
    for first in range(0, len(values), _DIGIT_BLOCK_ROWS):
        rest = values[first : first + _DIGIT_BLOCK_ROWS].astype(dtype)
        block = out[first : first + _DIGIT_BLOCK_ROWS]
        for column in range(end - 1, end - 1 - digits, -1):
            quotient = rest // 10
            block[:, column] = rest - quotient * 10 + ord("0")
            rest = quotient


def _fixed_width_strings(matrix: np.ndarray) -> pa.Array:
    """A string array over the rows of a uint8 matrix, without copying the bytes."""
    rows, width = matrix.shape
    matrix = np.ascontiguousarray(matrix)
    offset_type, string_type = (np.int32, pa.string()) if rows * width < 2**31 else (np.int64, pa.large_string())
    offsets = np.arange(0, (rows + 1) * width, width, dtype=offset_type)
    return pa.Array.from_buffers(string_type, rows, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])
