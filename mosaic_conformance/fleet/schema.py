"""The roster's one schema (``roster.schema.json``) and its fast validator.

The validator is Python code that fastjsonschema generates from the schema. Generating it
costs about 40 ms (fastjsonschema's import and its code generation), more than the rest of
``fleet add``, so it is generated at first use and cached as a compiled code object, keyed by
the schema's bytes and the interpreter: beside this module in ``__pycache__`` (like a
``.pyc``, also where ``PYTHONDONTWRITEBYTECODE`` is set: this one file is what keeps every
later start fast), else in the user's cache folder, else in memory only. A cached validator
loads in about a millisecond and never imports fastjsonschema: the generated code's exceptions
are this module's :class:`SchemaViolation`, with the same fields.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import re
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import CodeType
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("roster.schema.json")
# Bump when generate_code changes what it makes: a cached validator of another revision is
# never loaded.
REVISION = 1
_CACHE_NAME = "roster-validator-{key}.marshal"
_IMPORT = re.compile(r"^from fastjsonschema import (?P<names>[\w, ]+)\n", re.MULTILINE)

Validate = Callable[[Any], Any]


class SchemaViolation(ValueError):
    """What the validator raises for data the schema refuses: fastjsonschema's
    ``JsonSchemaValueException``, field for field."""

    def __init__(
        self,
        message: str,
        value: object = None,
        name: str | None = None,
        definition: object = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.name = name
        self.definition = definition
        self.rule = rule

    @property
    def path(self) -> list[str]:
        """``data.agents[2].name`` -> ``['data', 'agents', '2', 'name']``."""
        return [part for part in re.split(r"[.\[\]]+", self.name or "") if part]


class SchemaViolations(ValueError):
    """fastjsonschema's ``JsonSchemaValuesException`` (several violations at once)."""

    def __init__(self, errors: list[SchemaViolation]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


# What the generated code imports from fastjsonschema, and what it gets instead.
_STAND_INS: dict[str, type[Exception]] = {
    "JsonSchemaValueException": SchemaViolation,
    "JsonSchemaValuesException": SchemaViolations,
}


@cache
def schema_bytes() -> bytes:
    return SCHEMA_FILE.read_bytes()


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_bytes())
    return loaded


def generate_code() -> str:
    """The validator's source, from the schema; its fastjsonschema import taken out (the
    names it imported are bound to this module's stand-ins when the code runs)."""
    import fastjsonschema

    # without $id the entry point is named plainly `validate`
    anonymous = {k: v for k, v in schema().items() if k != "$id"}
    code: str = fastjsonschema.compile_to_code(anonymous)
    found = _IMPORT.search(code)
    if found is None:
        raise RuntimeError(
            f"fastjsonschema {fastjsonschema.VERSION} generated a validator that does not "
            "import its exceptions as this toolkit expects; please report it"
        )
    unknown = {n.strip() for n in found["names"].split(",")} - set(_STAND_INS)
    if unknown:
        raise RuntimeError(
            f"fastjsonschema {fastjsonschema.VERSION}'s validator imports {sorted(unknown)}, "
            "which this toolkit has no stand-in for; please report it"
        )
    return code[: found.start()] + code[found.end() :]


def cache_key() -> str:
    """Changes with the schema's bytes, this module's revision and the interpreter (the
    format of a code object is the interpreter's)."""
    crc = zlib.crc32(schema_bytes())
    return f"{crc:08x}-r{REVISION}-{sys.implementation.cache_tag}"


def cache_dirs() -> list[Path]:
    """Where a generated validator is kept, first choice first."""
    user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(__file__).with_name("__pycache__"), Path(user) / "mosaic-conformance"]


def _compiled() -> CodeType:
    name = _CACHE_NAME.format(key=cache_key())
    for folder in cache_dirs():
        try:
            code = marshal.loads((folder / name).read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            continue  # not there yet, or unreadable: generate it
        if isinstance(code, CodeType):
            return code
    code = compile(generate_code(), f"<roster validator {name}>", "exec")
    data = marshal.dumps(code)
    for folder in cache_dirs():
        if _store(folder / name, data):
            break
    return code


def _store(path: Path, data: bytes) -> bool:
    """Write ``path`` whole or not at all (concurrent first uses each write a whole file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


@cache
def validator() -> Validate:
    """The fast validator: returns the data (defaults filled in) or raises
    :class:`SchemaViolation` naming the field."""
    namespace: dict[str, object] = {"__name__": "mosaic_conformance.fleet._roster_validator"}
    namespace.update(_STAND_INS)
    exec(_compiled(), namespace)
    validate: Validate = namespace["validate"]  # type: ignore[assignment]
    return validate


if __name__ == "__main__":  # print the generated source, to read it
    sys.stdout.write(generate_code())
