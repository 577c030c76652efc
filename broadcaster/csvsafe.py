"""CSV the panel writes, safe to open in a spreadsheet program (CSV / formula injection).

A node name or announcement title such as ``=HYPERLINK("http://evil","x")`` is a formula to Excel or
LibreOffice Calc. Every CSV the panel produces goes through :func:`csv_cell` (through :func:`csv_writer`): a
*text* cell whose first character — after any leading spaces — is ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe (OWASP "CSV Injection"), which spreadsheet programs show as text and
do not evaluate. Numbers (int, float) are written as they are, so a genuine negative number stays a number.

The registry export is also the import format: :func:`csv_uncell` takes the apostrophe off again when the
importer reads a cell (``fleet.import_csv``), so exporting and re-importing changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO, Any

#: The first characters that make a spreadsheet program evaluate a cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _dangerous(text: str) -> bool:
    return text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS)


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet program evaluates; numbers and None unchanged."""
    if isinstance(value, str) and _dangerous(value):
        return "'" + value
    return value


def csv_uncell(text: str) -> str:
    """The inverse of :func:`csv_cell` for a cell read back from the panel's own CSV."""
    if text.startswith("'") and _dangerous(text[1:]):
        return text[1:]
    return text


class SafeWriter:
    """``csv.writer`` whose rows go through :func:`csv_cell`."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        kwargs.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: IO[str], **kwargs: Any) -> SafeWriter:
    """A CSV writer (CRLF line ends) that neutralises formula cells."""
    return SafeWriter(out, **kwargs)


def credentials_csv(credentials: dict[str, str]) -> str:
    """``node_id,token`` lines of newly imported nodes (shown once on the import page). The node id goes
    through :func:`csv_cell`; a token is written as it is: the panel made it (URL-safe base64, never a formula
    an attacker chose), and an apostrophe in front would make it a wrong credential."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("node_id", "token"))
    for node_id, token in credentials.items():
        writer.writerow((csv_cell(node_id), token))
    return out.getvalue()
