"""Every CSV dfscan writes, written here: cells a spreadsheet would run as a formula are neutralised.

A file name such as ``=cmd|' -C calc'!A0.mp4`` or ``@SUM(1,2).mp4`` is an archive's to choose, and a
spreadsheet that opens a CSV runs a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some, one
starting with a tab or a carriage return) as a formula. As OWASP recommends ("CSV Injection"), such a
cell is written with a single quote in front (``'=cmd|...``), which spreadsheets show as text. A cell
that is a plain number (``-0.25``, ``+3``, ``1e-07``) is no formula and is written as it is. The exact
values stay where they are not text for a spreadsheet: ``path_bytes`` in the Parquet rows, and the JSON
exports, which are never neutralised. Cells are quoted by the csv module where they hold a comma, a
quote or a line break, so a name with a newline reads back whole.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value):
    """``value`` as a spreadsheet may hold it: text starting with a formula character gets a leading
    single quote; plain numbers, other text and non-text values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence | Mapping], lineterminator: str = "\r\n") -> str:
    """A CSV document: ``header``, then ``rows`` (sequences in header order, or mappings keyed by it;
    a missing key is an empty cell), every cell through ``safe_cell``. The header is dfscan's own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    for row in rows:
        values = [row.get(name) for name in header] if isinstance(row, Mapping) else row
        writer.writerow([safe_cell(value) for value in values])
    return buffer.getvalue()
