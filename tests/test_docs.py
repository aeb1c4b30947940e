"""The docs hold: the generated requirements page is current, every shell block marked
runnable runs as written, and the CI recipes parse and name only options that exist.

A shell block is runnable when the line before its fence is ``<!-- runnable -->``. Each runs
with ``sh -e`` in an empty folder, with this environment's ``bin`` first on ``PATH`` (as after
``. .venv/bin/activate``), on the fake backend.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
RECIPES = sorted((DOCS / "ci").glob("*.yml"))
RUNNABLE = "<!-- runnable -->"
SHELL_FENCES = ("```sh", "```bash", "```shell")
BLOCK_TIMEOUT_S = 1200  # the whole fleet suite on a loaded two-core machine takes minutes
SHOWN_OUTPUT_LINES = 60


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced block of a page: its fence's language, the line it starts on, its text."""

    page: Path
    line: int  # 1-based line of the opening fence
    fence: str
    text: str
    marker: str  # the line before the fence, stripped

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.fence in SHELL_FENCES

    @property
    def runnable(self) -> bool:
        return self.is_shell and self.marker == RUNNABLE


def blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            assert end is not None, f"{page}:{i + 1}: a code block is never closed"
            marker = lines[i - 1].strip() if i > 0 else ""
            yield Block(page, i + 1, fence, "\n".join(lines[i + 1 : end]) + "\n", marker)
            i = end
        i += 1


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


RUNNABLE_BLOCKS = [b for b in all_blocks() if b.runnable]


# --- (a) the requirements page ---------------------------------------------------------


def test_requirements_page_is_current() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "mosaic_conformance.harness.cli", "requirements"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    page = (DOCS / "requirements.md").read_text("utf-8")
    assert page == generated, (
        "docs/requirements.md is stale: regenerate it with "
        "`mosaic-conformance requirements > docs/requirements.md`"
    )


# --- (b) runnable shell blocks ---------------------------------------------------------


def test_every_runnable_marker_is_on_a_shell_block() -> None:
    """A marker above anything else (a typo, a yaml block) would silently run nothing."""
    for page in PAGES:
        lines = page.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() == RUNNABLE:
                after = lines[i + 1].strip() if i + 1 < len(lines) else ""
                assert after in SHELL_FENCES, (
                    f"{page.relative_to(ROOT)}:{i + 1}: {RUNNABLE} must be the line right before "
                    f"a ```sh fence, not before {after!r}"
                )
    assert RUNNABLE_BLOCKS, "no docs page has a runnable block"


def block_environment(folder: Path) -> dict[str, str]:
    """A new user's shell: the toolkit's venv activated, nothing of this test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOSAIC_", "COV_"))}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env["PYTEST_DEBUG_TEMPROOT"] = str(folder)  # its pytest's temp folders stay in the test's
    return env


@pytest.mark.timeout(BLOCK_TIMEOUT_S + 60)
@pytest.mark.parametrize("block", RUNNABLE_BLOCKS, ids=lambda b: b.where)
def test_runnable_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    script = tmp_path / "block.sh"
    script.write_text(block.text)
    try:
        proc = subprocess.run(
            ["sh", "-e", str(script)],
            cwd=workdir,
            env=block_environment(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.where}: still running after {exc.timeout:g} s:\n{block.text}")
    shown = "\n".join(proc.stdout.splitlines()[-SHOWN_OUTPUT_LINES:])
    assert proc.returncode == 0, (
        f"{block.where}: exited with {proc.returncode}\n--- the block:\n{block.text}"
        f"--- its last {SHOWN_OUTPUT_LINES} lines of output:\n{shown}"
    )


# --- (c) options named in the docs and in the CI recipes -------------------------------

OPTION_LINE = re.compile(r"^  (-\S.*?)(?:\s{2,}|$)")  # "  -n numprocesses, --numprocesses=N  "
OPTION_NAME = re.compile(r"(?:^|[\s,])(--?[A-Za-z0-9][\w-]*)")


def spelling(option: str) -> str:
    """An option as pytest's help shows it: of ``--junitxml`` and ``--junit-xml``, which are the
    same after removing dashes, the help lists only the longer, so compare without them."""
    return option if not option.startswith("--") else "--" + option[2:].replace("-", "")


def options_in_help(text: str) -> frozenset[str]:
    """Every option an argparse-style ``--help`` lists (``-n``, ``--numprocesses``), spelt as
    :func:`spelling` does."""
    names: set[str] = set()
    for line in text.splitlines():
        found = OPTION_LINE.match(line)
        if found:
            names.update(map(spelling, OPTION_NAME.findall(found.group(1))))
    return frozenset(names)


@cache
def known_options(tmp_root: str) -> dict[str, frozenset[str]]:
    """The options of the commands the docs name, as installed here (our plugin included)."""

    def help_of(*argv: str) -> str:
        return subprocess.run(
            [*argv, "--help"], capture_output=True, text=True, check=True, cwd=tmp_root
        ).stdout

    return {
        "pytest": options_in_help(
            help_of(sys.executable, "-m", "pytest", "-p", "no:cacheprovider")
        ),
        "mosaic-conformance": options_in_help(
            help_of(sys.executable, "-m", "mosaic_conformance.harness.cli")
        ),
    }


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, frozenset[str]]:
    return known_options(str(tmp_path_factory.mktemp("help")))


def commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script, as word lists (comments and operators gone)."""
    joined = re.sub(r"\\\n", " ", script)
    for line in joined.splitlines():
        if "<<" in line:  # a here-document's body is not a command; its first line is
            line = line.split("<<", 1)[0]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            words = list(lexer)
        except ValueError:  # an unclosed quote: a line of a here-document or a string
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word in (";", "&&", "||", "|", "&", "(", ")"):
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def invocation(words: list[str]) -> tuple[str, list[str]] | None:
    """``("pytest", args)`` or ``("mosaic-conformance", args)`` if ``words`` runs one."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value before the command
    if words[:1] == ["exec"]:
        words = words[1:]
    if not words:
        return None
    program = Path(words[0]).name
    if program in ("pytest", "py.test", "mosaic-conformance"):
        return ("pytest" if program != "mosaic-conformance" else program), words[1:]
    if program in ("python", "python3") and words[1:3] == ["-m", "pytest"]:
        return "pytest", words[3:]
    return None


def unknown_options(script: str, options: dict[str, frozenset[str]]) -> list[str]:
    problems = []
    for words in commands(script):
        found = invocation(words)
        if found is None:
            continue
        program, args = found
        for arg in args:
            if not arg.startswith("-") or arg == "-":
                continue
            name = arg.split("=", 1)[0]
            if not name.startswith("--"):
                name = name[:2]  # -n2, -qq: the option is the first letter
            if spelling(name) not in options[program]:
                problems.append(f"{program} has no option {name} (in: {shlex.join(words)})")
    return problems


def test_shell_blocks_name_only_options_that_exist(options: dict[str, frozenset[str]]) -> None:
    problems = [
        f"{b.where}: {p}"
        for b in all_blocks()
        if b.is_shell
        for p in unknown_options(b.text, options)
    ]
    assert not problems, "\n".join(problems)


def test_the_option_check_catches_a_misspelt_option(options: dict[str, frozenset[str]]) -> None:
    script = (
        'X=1 pytest --conformance --fleet-comand "mosaic fleet" -n 2 && mosaic-conformance --vers\n'
    )
    assert unknown_options(script, options) == [
        "pytest has no option --fleet-comand (in: X=1 pytest --conformance --fleet-comand "
        "'mosaic fleet' -n 2)",
        "mosaic-conformance has no option --vers (in: mosaic-conformance --vers)",
    ]


# --- the CI recipes ----------------------------------------------------------------------

SCRIPT_KEYS = ("run", "script", "before_script", "after_script")


def scripts_of(node: Any) -> Iterator[str]:
    """Every shell script of a workflow: GitHub/Forgejo ``run``, GitLab ``script`` & co."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SCRIPT_KEYS and isinstance(value, str):
                yield value
            elif key in SCRIPT_KEYS and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from scripts_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from scripts_of(item)


def conformance_runs(recipe: Any) -> list[list[str]]:
    runs = []
    for script in scripts_of(recipe):
        for words in commands(script):
            found = invocation(words)
            if found and found[0] == "pytest" and "--conformance" in found[1]:
                runs.append(found[1])
    return runs


def option_value(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def kept_paths(recipe: Any) -> list[str]:
    """What a recipe keeps: upload-artifact ``path`` lines, GitLab ``artifacts`` paths."""
    kept: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            uses = str(node.get("uses", ""))
            if "upload-artifact" in uses:
                kept.extend(str(node.get("with", {}).get("path", "")).split())
            artifacts = node.get("artifacts")
            if isinstance(artifacts, dict):
                assert artifacts.get("when") == "always", "GitLab keeps failed runs' artifacts"
                kept.extend(artifacts.get("paths", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(recipe)
    return kept


def test_there_is_a_recipe_for_each_forge() -> None:
    assert [p.name for p in RECIPES] == [
        "forgejo-actions.yml",
        "github-actions.yml",
        "gitlab-ci.yml",
    ]


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.name)
def test_recipe_parses_runs_the_suites_and_keeps_the_reports(
    recipe_path: Path, options: dict[str, frozenset[str]]
) -> None:
    recipe = yaml.safe_load(recipe_path.read_text("utf-8"))
    assert isinstance(recipe, dict), f"{recipe_path.name} is not a YAML mapping"
    problems = [p for script in scripts_of(recipe) for p in unknown_options(script, options)]
    assert not problems, "\n".join(problems)
    runs = conformance_runs(recipe)
    assert runs, f"{recipe_path.name} never runs `pytest --conformance`"
    kept = kept_paths(recipe)
    for args in runs:
        report, junit = option_value(args, "--conformance-report"), option_value(args, "--junitxml")
        assert report, f"{recipe_path.name}: a run without --conformance-report"
        assert junit, f"{recipe_path.name}: a run without --junitxml"
        for path in (report, junit):
            assert any(
                path.rstrip("/") == k.rstrip("/") or path.startswith(k.rstrip("/") + "/")
                for k in kept
            ), f"{recipe_path.name}: {path} is not kept as an artifact (kept: {kept})"


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("github-actions.yml", "vendor.github-workflows"),
        ("forgejo-actions.yml", "vendor.github-workflows"),  # Forgejo and Gitea read that syntax
        ("gitlab-ci.yml", "vendor.gitlab-ci"),
    ],
)
def test_recipe_matches_its_forge_schema(name: str, schema: str) -> None:
    """The forges' own JSON schemas, as check-jsonschema ships them (no network)."""
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema to check this")
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, DOCS / "ci" / name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"docs/ci/{name} breaks {schema}:\n{proc.stdout}{proc.stderr}"


def test_github_and_forgejo_keep_the_reports_of_a_failed_run() -> None:
    for name in ("github-actions.yml", "forgejo-actions.yml"):
        recipe = yaml.safe_load((DOCS / "ci" / name).read_text("utf-8"))
        for job in recipe["jobs"].values():
            uploads = [s for s in job["steps"] if "upload-artifact" in str(s.get("uses", ""))]
            assert uploads, f"{name}: a job keeps nothing"
            assert all("always()" in str(s.get("if", "")) for s in uploads), name


def test_the_ci_page_shows_each_recipe_as_it_is() -> None:
    """docs/ci.md embeds every recipe under ``<!-- file: ci/NAME -->``; they cannot drift."""
    embedded = {
        b.marker.removeprefix("<!-- file: ").removesuffix(" -->"): b.text
        for b in blocks(DOCS / "ci.md")
        if b.marker.startswith("<!-- file: ")
    }
    assert sorted(embedded) == [f"ci/{p.name}" for p in RECIPES]
    for name, text in embedded.items():
        assert text == (DOCS / name).read_text("utf-8"), f"docs/ci.md shows a stale {name}"


# --- links and the site ------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s#:]+\.md)?(?:#([^)\s]+))?\)")  # relative: absolute ones have a ":"


def anchors(page: Path) -> set[str]:
    """The ids MkDocs and the forges give the page's headings."""
    found = set()
    for line in page.read_text("utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def test_links_between_pages_lead_somewhere() -> None:
    problems = []
    for page in PAGES:
        for target, anchor in LINK.findall(page.read_text("utf-8")):
            if not target and not anchor:
                continue
            linked = (page.parent / target).resolve() if target else page
            where = f"{page.relative_to(ROOT)} -> {target}{'#' + anchor if anchor else ''}"
            if not linked.is_file():
                problems.append(f"{where}: no such page")
            elif anchor and anchor not in anchors(linked):
                problems.append(f"{where}: no such heading")
    assert not problems, "\n".join(problems)


def test_the_site_lists_every_page() -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    listed = [next(iter(entry.values())) for entry in site["nav"]]
    excluded = site.get("exclude_docs", "").split()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md"))
    assert sorted([*listed, *excluded]) == pages
