"""The package as an index would publish it: the sdist and the wheel built from this checkout,
what they carry, and the description an index page renders from their metadata."""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = "mosaic_conformance"
# What an implementer's run needs besides Python modules, inside the package.
PACKAGE_DATA = (
    "py.typed",
    "fleet/roster.schema.json",
    "fleet/profiles/general.yaml",
    "fleet/profiles/minimal.yaml",
    "suites/connector/conftest.py",
    "harness/systems/systemd-image/Dockerfile",
)
STAND_INS = ("harness/systems/bin/systemctl", "harness/systems/bin/loginctl")
USER_EXTRAS = ("connectors", "systemd", "synapse")  # every capability a judging run may need


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def sdist_names(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        return [m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name]


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(archive.read(name).decode("utf-8"))


def test_the_wheel_and_the_sdist_carry_the_license(built_dists: dict[str, Path]) -> None:
    license_text = (ROOT / "LICENSE").read_text("utf-8")
    assert license_text.startswith("MIT License")
    with zipfile.ZipFile(built_dists["wheel"]) as archive:
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert licenses, f"no LICENSE in the wheel:\n{wheel_names(built_dists['wheel'])}"
        assert archive.read(licenses[0]).decode("utf-8") == license_text
    assert "LICENSE" in sdist_names(built_dists["sdist"])
    meta = metadata(built_dists["wheel"])
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_the_wheel_carries_the_suites_and_their_data(built_dists: dict[str, Path]) -> None:
    names = wheel_names(built_dists["wheel"])
    missing = [p for p in (*PACKAGE_DATA, *STAND_INS) if f"{NAME}/{p}" not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    with zipfile.ZipFile(built_dists["wheel"]) as archive:
        for stand_in in STAND_INS:
            mode = archive.getinfo(f"{NAME}/{stand_in}").external_attr >> 16
            assert mode & stat.S_IXUSR, f"{stand_in} is not executable in the wheel"


def test_the_metadata_names_the_project_urls(built_dists: dict[str, Path]) -> None:
    urls = dict(
        u.split(", ", 1) for u in metadata(built_dists["wheel"]).get_all("Project-URL") or []
    )
    assert sorted(urls) == ["Documentation", "Issues", "Source"]
    assert all(u.startswith("https://") for u in urls.values()), urls


def test_the_all_extra_judges_every_connector_kind(built_dists: dict[str, Path]) -> None:
    requires = metadata(built_dists["wheel"]).get_all("Requires-Dist") or []

    def of(extra: str) -> set[str]:
        return {r.split(";")[0] for r in requires if r.endswith(f"extra == '{extra}'")}

    for extra in USER_EXTRAS:
        assert of(extra), f"no extra {extra!r}"
        assert of(extra) <= of("all"), f"[all] lacks {sorted(of(extra) - of('all'))} of [{extra}]"
    assert of("all") == set().union(*map(of, USER_EXTRAS)), "[all] holds more than judging needs"


def test_nothing_installs_extras_that_all_already_has() -> None:
    """A leftover ``[all,synapse]`` says [all] is not all."""
    files = [*(ROOT / "scripts").iterdir(), ROOT / ".ci" / "run", *(ROOT / "docs").rglob("*")]
    files += [ROOT / "README.md"]
    pattern = re.compile(
        r"\[all,(?:connectors|systemd|synapse)|(?:connectors|systemd|synapse),all\]"
    )
    found = [
        str(f.relative_to(ROOT)) for f in files if f.is_file() and pattern.search(f.read_text())
    ]
    assert not found, f"these install [all] with a part of it again: {found}"


# --- the description on the index page --------------------------------------------------

HREF = re.compile(r'<a href="([^"]*)"')


def test_the_description_renders_with_working_links(built_dists: dict[str, Path]) -> None:
    readme_renderer = pytest.importorskip(
        "readme_renderer.markdown", reason="pip install 'readme-renderer[md]': renders it"
    )
    meta = metadata(built_dists["wheel"])
    assert meta["Description-Content-Type"] == "text/markdown"
    html = readme_renderer.render(meta.get_payload(), variant="GFM")
    assert html, "the description does not render"
    source = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])["Source"]
    problems = []
    for href in HREF.findall(html):
        if href.startswith("#"):
            continue
        if not href.startswith("https://"):
            problems.append(f"{href}: a relative link, broken on an index page")
        elif href.startswith(source + "/"):
            # blob/main/PATH or tree/main/PATH: a file or folder of this repository
            path = re.sub(r"^(?:blob|tree)/main/", "", href.removeprefix(source + "/"))
            if "/main/" in href and not (ROOT / path).exists():
                problems.append(f"{href}: no {path} in the repository")
    assert not problems, "\n".join(problems)
    assert HREF.findall(html), "the description links to no documentation"


def test_the_readme_opens_with_the_checkout_commands() -> None:
    """The project rule; the index page has a description of its own for that reason."""
    first_block = (ROOT / "README.md").read_text("utf-8").split("```")[1]
    commands = [line.split()[0] for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["scripts/conformance", "scripts/test"]
