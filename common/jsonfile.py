"""Reading a JSON file another stage wrote: bounded in size before it is parsed, every failure a
SuiteError naming the file and saying what to do."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from common.errors import SuiteError


def check(doc, schema: dict, schema_id: str, source) -> None:
    """SuiteError naming `source` and the first place `doc` breaks its JSON schema."""
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise SuiteError(f"not a valid {schema_id} document at {where}: {exc.message}", source) from None


def read(path: str | Path, max_bytes: int, what: str, missing: str = "run make export first"):
    """The parsed document; `what` names the kind of file in messages, `missing` says how to get one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SuiteError(f"{size:,} bytes: too large for {what}", path)
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"missing: {missing}", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"unreadable {what} ({exc})", path) from None
