"""Checked-in JSON Schemas of protocol v1, generated from :func:`devices.protocol.json_schemas`.

``devices/schemas/<leaf>.schema.json`` (plan, cmd, status, events, ack) ship as package data so that
vendors can validate payloads without Python. ``make schemas`` rewrites them; a test fails when the
checked-in files drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from devices.protocol import json_schemas

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_filename(leaf: str) -> str:
    return f"{leaf}.schema.json"


def render_schema(schema: dict[str, Any]) -> str:
    """Stable text of one schema: sorted keys, 2-space indent, UTF-8 kept, trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path | str = SCHEMA_DIR) -> list[Path]:
    """Write one ``<leaf>.schema.json`` per topic leaf into ``directory``; return the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for leaf, schema in json_schemas().items():
        path = directory / schema_filename(leaf)
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written


def check_schemas(directory: Path | str = SCHEMA_DIR) -> list[str]:
    """File names in ``directory`` that are missing or differ from freshly generated schemas."""
    directory = Path(directory)
    stale = []
    for leaf, schema in json_schemas().items():
        path = directory / schema_filename(leaf)
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            stale.append(path.name)
            continue
        if current != render_schema(schema):
            stale.append(path.name)
    return stale


def load_schema(leaf: str, directory: Path | str = SCHEMA_DIR) -> dict[str, Any]:
    """The checked-in schema of one topic leaf."""
    return json.loads((Path(directory) / schema_filename(leaf)).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """``python -m devices.schema_files [--check]``: write the schemas, or only report drift."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        stale = check_schemas()
        for name in stale:
            print(f"stale: {SCHEMA_DIR / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
