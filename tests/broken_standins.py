"""Deliberately wrong stand-ins of the fake backend, each with systemd's exit codes but not
its output: a comparison of exit codes alone passes them, the differential test must not.

Each variant is one textual change to one stand-in, applied to a copy of a started
:class:`FakeSession`'s scripts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mosaic_conformance.harness.systems.fake import FakeSession


@dataclass(frozen=True, slots=True)
class Breakage:
    script: str  # the stand-in changed
    old: str  # a piece of its text...
    new: str  # ...and what it becomes


BROKEN_STANDINS = {
    # the header of systemd 251 and earlier
    "vendor-preset-header": Breakage(
        "systemctl", "UNIT FILE\tSTATE\tPRESET", "UNIT FILE\tSTATE\tVENDOR PRESET"
    ),
    # enable works but says nothing of the links it made
    "silent-enable": Breakage("systemctl", '[ -z "$_quiet" ] || return 0', "return 0"),
    # show answers with every property it has, not only those asked for
    "show-everything": Breakage("systemctl", '    *",$1,"*) ;;\n    *) return 0 ;;', "    *) ;;"),
    # loginctl's --value ignored
    "linger-value-with-name": Breakage("loginctl", 'if [ -n "$_value" ]', "if false"),
}


def broken_session(session: FakeSession, variant: str, workdir: Path) -> FakeSession:
    """A started copy of ``session`` whose stand-ins carry the breakage ``variant``."""
    breakage = BROKEN_STANDINS[variant]
    broken = FakeSession(workdir, session.options)
    broken.start()
    script = broken.bin_dir / breakage.script
    text = script.read_text()
    if breakage.old not in text:
        raise AssertionError(f"{variant}: {breakage.old!r} is no longer in {breakage.script}")
    script.write_text(text.replace(breakage.old, breakage.new))
    shutil.copymode(session.bin_dir / breakage.script, script)
    return broken
