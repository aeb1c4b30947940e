"""The GitLab recipe, run as a pipeline by gitlab-ci-local: it passes the reference fleet,
keeps the JUnit XML and the report, and fails a broken fleet with the gate's reason in its log.

The pipeline runs ``docs/ci/gitlab-ci.yml`` unchanged in a small Node project whose
``npm run build`` makes ``dist/cli.js``, a fleet command that runs the fleet under test (the
reference, or a variant of ``broken_fleets.py``). What stands in for the forge:

- ``--force-shell-executor``: the recipe's ``node:20-bookworm`` image cannot be pulled here,
  so the job runs on this machine, with its Node and Python 3;
- ``CI_PROJECT_DIR``: gitlab-ci-local leaves it at the container's path when it forces the
  shell executor, where GitLab sets the folder the job runs in; the test sets that folder;
- ``PIP_FIND_LINKS``: the recipe's ``pip install mosaic-conformance`` takes the wheel built
  from this checkout (its dependencies come from the package index).

GitHub and Forgejo Actions have no local runner that installs here (docs/ci.md says so).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "docs" / "ci" / "gitlab-ci.yml"
BROKEN = Path(__file__).parent / "broken_fleets.py"
JOB = "mosaic-conformance"
PIPELINE_TIMEOUT_S = 600  # the whole fleet suite, through Node, on a loaded two-core machine

# A Node project that builds the fleet command the recipe's FLEET_CMD names.
PACKAGE_JSON = {
    "name": "fleet-under-test",
    "version": "0.0.0",
    "private": True,
    "scripts": {"build": "node build.js"},
}
PACKAGE_LOCK = {
    "name": "fleet-under-test",
    "version": "0.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {"": {"name": "fleet-under-test", "version": "0.0.0"}},
}
BUILD_JS = """\
const fs = require("node:fs");
fs.mkdirSync("dist", { recursive: true });
fs.copyFileSync("src/cli.js", "dist/cli.js");
"""
# `node dist/cli.js fleet ARGS` runs FLEET ARGS, with its exit status.
CLI_JS = """\
const { spawnSync } = require("node:child_process");
const FLEET = %s;
const [command, ...args] = process.argv.slice(2);
if (command !== "fleet") {
  console.error("usage: cli.js fleet COMMAND [ARG ...]");
  process.exit(2);
}
const run = spawnSync(FLEET[0], [...FLEET.slice(1), ...args], { stdio: "inherit" });
process.exit(run.status ?? 1);
"""


def tool_problem() -> str | None:
    """Why the pipeline cannot run here, or None."""
    for tool in ("gitlab-ci-local", "rsync", "git", "node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs what the pipeline test needs)"
    version = subprocess.run(
        ["gitlab-ci-local", "--version"], capture_output=True, text=True, check=False
    )
    if version.returncode != 0:
        last = (version.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            f"gitlab-ci-local does not run with this Node ({last}); .ci/run installs one that does"
        )
    return None


TOOL_PROBLEM = tool_problem()
pytestmark = pytest.mark.skipif(TOOL_PROBLEM is not None, reason=str(TOOL_PROBLEM))


def job_environment() -> dict[str, str]:
    """The machine's environment, without this test run's virtualenv and pytest variables."""
    own_bin = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "MOSAIC_", "HYPOTHESIS_", "COV_", "PIP_"))
        and k != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != own_bin
    )
    return env


def make_project(folder: Path, fleet: list[str]) -> Path:
    """A checkout of a Node fleet with the recipe as its ``.gitlab-ci.yml``.

    Its CLI runs ``fleet`` on this checkout's Python: the fleet under test brings its own
    dependencies (the reference fleet's connectors), apart from the toolkit the job installs.
    """
    folder.mkdir()
    (folder / ".gitlab-ci.yml").write_text(RECIPE.read_text("utf-8"))
    (folder / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2))
    (folder / "package-lock.json").write_text(json.dumps(PACKAGE_LOCK, indent=2))
    (folder / ".npmrc").write_text("audit=false\nfund=false\nupdate-notifier=false\n")
    (folder / "build.js").write_text(BUILD_JS)
    (folder / "src").mkdir()
    (folder / "src" / "cli.js").write_text(CLI_JS % json.dumps(fleet))
    (folder / ".gitignore").write_text("/dist/\n/reports/\n/.conformance-venv/\n")
    git = ["git", "-C", str(folder), "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the fleet"], check=True)
    return folder


def run_pipeline(
    project: Path, wheel: Path, extra_variables: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    variables = [
        f"CI_PROJECT_DIR={project}",
        f"PIP_FIND_LINKS={wheel.parent}",
        *extra_variables,
    ]
    try:
        return subprocess.run(
            [
                *("gitlab-ci-local", "--force-shell-executor", "--no-color"),
                *("--home", str(project.parent / "gitlab-ci-local-home")),
                *(arg for v in variables for arg in ("--variable", v)),
            ],
            cwd=project,
            env=job_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=PIPELINE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the pipeline still ran after {exc.timeout:g} s")


def artifacts(project: Path) -> Path:
    """Where gitlab-ci-local keeps what the job's ``artifacts:`` names."""
    return project / ".gitlab-ci-local" / "artifacts" / JOB / "reports"


def kept_report(project: Path) -> dict[str, object]:
    kept = artifacts(project)
    assert kept.is_dir(), f"the job kept no reports/ as an artifact: {kept} is missing"
    assert sorted(p.name for p in kept.iterdir()) == [
        "conformance.json",
        "conformance.md",
        "junit.xml",
    ], f"the job kept {sorted(p.name for p in kept.iterdir())}"
    report: dict[str, object] = json.loads((kept / "conformance.json").read_text("utf-8"))
    return report


def junit_testcases(project: Path) -> list[ET.Element]:
    tree = ET.parse(artifacts(project) / "junit.xml")
    return list(tree.iter("testcase"))


def test_the_gitlab_recipe_passes_the_reference_fleet(
    tmp_path: Path, built_dists: dict[str, Path]
) -> None:
    project = make_project(
        tmp_path / "reference", [sys.executable, "-m", "mosaic_conformance.fleet"]
    )
    proc = run_pipeline(project, built_dists["wheel"])
    log = proc.stdout
    assert proc.returncode == 0, f"the pipeline failed:\n{log[-6000:]}"
    assert f"PASS  {JOB}" in log
    assert "mosaic-conformance 0.1.0 (requirement catalogue" in log  # the installed wheel
    assert "gate: passed" in log
    report = kept_report(project)
    assert report["gate"] == "passed"
    # judged through the recipe's FLEET_CMD, the Node build, not the bundled reference
    assert report["judged"] == {"fleet": f"node {project}/dist/cli.js fleet", "backend": "fake"}
    assert isinstance(report["fleet_invocations"], int)
    assert report["fleet_invocations"] > 100
    cases = junit_testcases(project)
    assert len(cases) > 40
    assert not [c for c in cases if c.find("failure") is not None]
    assert "mosaic-conformance-comment" not in log  # no merge request, no token: not run


def test_the_gitlab_recipe_fails_a_broken_fleet_with_the_gates_reason(
    tmp_path: Path, built_dists: dict[str, Path]
) -> None:
    project = make_project(tmp_path / "broken", [sys.executable, str(BROKEN), "no-enable-on-add"])
    # The requirements this variant breaks, as a CI variable: the run stays short.
    proc = run_pipeline(
        project, built_dists["wheel"], ("PYTEST_ADDOPTS=--conformance-only SYM.1,SYM.2",)
    )
    log = proc.stdout
    assert proc.returncode != 0, f"the pipeline passed a broken fleet:\n{log[-6000:]}"
    assert f"FAIL  {JOB}" in log
    assert "gate: FAILED (SYM.1, SYM.2)" in log, log[-4000:]
    assert "add did not run `systemctl --user enable mosaic-agent@" in log
    report = kept_report(project)  # kept although the job failed
    assert report["gate"] == "failed"
    assert report["gating"] == ["SYM.1", "SYM.2"]
    failed = {
        c.get("name", "").split("[")[0]
        for c in junit_testcases(project)
        if c.find("failure") is not None
    }
    assert "test_add_enables_the_unit" in failed
