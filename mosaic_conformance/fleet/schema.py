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

import marshal
import os
import re
import sys
import zlib
from collections.abc import Callable
from functools import cache
from types import CodeType

TYPE_CHECKING = False  # typing's own would import typing: 3 ms of every start
if TYPE_CHECKING:
    from typing import Any

    Validate = Callable[[Any], Any]

SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "roster.schema.json")
# Bump when generate_code changes what it makes: a cached validator of another revision is
# never loaded.
REVISION = 3
_CACHE_NAME = "roster-validator-{key}.marshal"
_IMPORT = r"^from fastjsonschema import (?P<names>[\w, ]+)\n"  # in the generated code


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


class LazyPattern:
    """A regular expression compiled at its first use. The generated code compiles every
    pattern of the schema when it loads (5 ms, most of them for connector blocks that most
    rosters do not have); it gets these instead."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    def search(self, text: str) -> re.Match[str] | None:
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return self._compiled.search(text)


# What the generated code imports from fastjsonschema or calls, and what it gets instead.
_STAND_INS: dict[str, object] = {
    "JsonSchemaValueException": SchemaViolation,
    "JsonSchemaValuesException": SchemaViolations,
    "_lazy_pattern": LazyPattern,
}


@cache
def schema_bytes() -> bytes:
    with open(SCHEMA_FILE, "rb") as f:
        return f.read()


@cache
def schema() -> dict[str, Any]:
    import json  # here: `ps` needs only the validator

    loaded: dict[str, Any] = json.loads(schema_bytes())
    return loaded


def generate_code() -> str:
    """The validator's source, from the schema; its fastjsonschema import taken out (the
    names it imported are bound to this module's stand-ins when the code runs)."""
    import fastjsonschema

    # without $id the entry point is named plainly `validate`
    anonymous = {k: v for k, v in schema().items() if k != "$id"}
    code: str = fastjsonschema.compile_to_code(anonymous)
    found = re.search(_IMPORT, code, re.MULTILINE)
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
    code = code[: found.start()] + code[found.end() :]
    # its patterns are only ever searched (REGEX_PATTERNS[...].search): compile them on demand
    code = code.replace("re.compile(", "_lazy_pattern(")
    if code.count("Decimal") == 1:  # imported, never used: no decimal import at every start
        code = code.replace("from decimal import Decimal\n", "")
    return code


def cache_key() -> str:
    """Changes with the schema's bytes, this module's revision and the interpreter (the
    format of a code object is the interpreter's)."""
    crc = zlib.crc32(schema_bytes())
    return f"{crc:08x}-r{REVISION}-{sys.implementation.cache_tag}"


def cache_dirs() -> list[str]:
    """Where a generated validator is kept, first choice first."""
    user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [
        os.path.join(os.path.dirname(__file__), "__pycache__"),
        os.path.join(user, "mosaic-conformance"),
    ]


def _compiled() -> CodeType:
    name = _CACHE_NAME.format(key=cache_key())
    for folder in cache_dirs():
        try:
            with open(os.path.join(folder, name), "rb") as f:
                code = marshal.loads(f.read())
        except (OSError, ValueError, EOFError, TypeError):
            continue  # not there yet, or unreadable: generate it
        if isinstance(code, CodeType):
            return code
    code = compile(generate_code(), f"<roster validator {name}>", "exec")
    data = marshal.dumps(code)
    for folder in cache_dirs():
        if _store(os.path.join(folder, name), data):
            break
    return code


def _store(path: str, data: bytes) -> bool:
    """Write ``path`` whole or not at all (concurrent first uses each write a whole file),
    and remove the validators of other schemas or revisions beside it."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        prefix, suffix = _CACHE_NAME.split("{key}")
        for old in os.listdir(folder):
            if old != name and old.startswith(prefix) and old.endswith(suffix):
                os.unlink(os.path.join(folder, old))
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)  # if it was made
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
