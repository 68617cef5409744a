"""Run `moby-asm validate` on each malformed descriptor in data/invalid-descriptors/.

Each file states its expected diagnostics in header lines `# expect: LINE:COLUMN: MESSAGE`,
where MESSAGE is a substring of the reported message. Files that cannot carry a comment
take their expectations from `SIDECAR`. Cases in `KNOWN_BUGS` expect the right position or
message, which moby-asm does not report yet, so they are strict xfails. Cases in
`ACCEPTED_BY_BUG` pass validation although they are invalid.
"""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "invalid-descriptors"
EXPECT_LINE = re.compile(r"^# expect: (\d+:\d+: .+)$")

SIDECAR = {
    "empty-file": ["1:1: file is empty; expected a mapping"],
    # The first invalid byte, 0xE9, is the 17th byte of line 2.
    "not-utf8": ["2:17: file is not valid UTF-8: byte 0xe9 (invalid continuation byte); save it as UTF-8"],
}

# Cases whose correct position or message moby-asm does not report yet; each is a strict xfail.
KNOWN_BUGS: dict[str, str] = {}

# Cases that moby-asm wrongly accepts; each is a strict xfail.
ACCEPTED_BY_BUG: dict[str, str] = {}


def expectations(path: Path) -> list[str]:
    """Return the `LINE:COLUMN: MESSAGE` expectations of one data file."""
    if path.stem in SIDECAR:
        return SIDECAR[path.stem]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [match.group(1) for match in map(EXPECT_LINE.match, lines) if match]


def case_files() -> list[Path]:
    return sorted(DATA.glob("*.yml"))


def case_params(*bug_tables: dict[str, str]) -> list:
    """Return one pytest param for each data file, a strict xfail when a table lists it."""
    params = []
    for path in case_files():
        reasons = [table[path.stem] for table in bug_tables if path.stem in table]
        marks = [pytest.mark.xfail(strict=True, reason=reason) for reason in reasons[:1]]
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def diagnostic_lines(stderr: str, target: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{target}:")]


def is_reported(expected: str, target: Path, lines: list[str]) -> bool:
    """Return whether a line reports `expected` ("LINE:COLUMN: MESSAGE") for `target`."""
    position, _, message = expected.partition(": ")
    prefix = f"{target}:{position}: "
    return any(line.startswith(prefix) and message in line[len(prefix) :] for line in lines)


@dataclass
class CaseRun:
    """One `moby-asm validate` run on a project that contains a single descriptor."""

    target: Path
    returncode: int
    stdout: str
    stderr: str
    files_before: dict
    files_after: dict


@pytest.fixture(scope="module")
def run_case(tmp_path_factory, cli, folder_snapshot):
    """Run every data file once, in parallel, and return a function that looks up its run."""

    def run_one(source: Path) -> CaseRun:
        project = tmp_path_factory.mktemp(source.stem)
        target = project / "components" / source.name
        target.parent.mkdir()
        shutil.copyfile(source, target)
        before = folder_snapshot(project)
        result = cli("validate", project, cwd=project)
        return CaseRun(
            target,
            result.returncode,
            result.stdout,
            result.stderr,
            before,
            folder_snapshot(project),
        )

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) * 2) as pool:
        runs = dict(zip([path.stem for path in case_files()], pool.map(run_one, case_files())))
    return lambda source: runs[source.stem]


def test_data_folder_has_enough_cases():
    assert len(case_files()) >= 35


@pytest.mark.parametrize("path", case_params())
def test_data_file_states_expectations(path):
    assert expectations(path), f"{path.name} has no '# expect:' line and no SIDECAR entry"


def test_tables_name_existing_files():
    names = {path.stem for path in case_files()}
    assert set(SIDECAR) <= names
    assert set(KNOWN_BUGS) <= names
    assert set(ACCEPTED_BY_BUG) <= names


@pytest.mark.parametrize("path", case_params(ACCEPTED_BY_BUG))
def test_invalid_descriptor_rejected_cleanly(path, run_case):
    run = run_case(path)

    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert diagnostic_lines(run.stderr, run.target), run.stderr
    assert run.files_after == run.files_before


@pytest.mark.parametrize("path", case_params(KNOWN_BUGS, ACCEPTED_BY_BUG))
def test_invalid_descriptor_diagnostics(path, run_case):
    run = run_case(path)
    reported = diagnostic_lines(run.stderr, run.target)

    for expected in expectations(path):
        assert is_reported(expected, run.target, reported), (
            f"missing {expected!r} in:\n{run.stderr}"
        )


@pytest.mark.parametrize("name", ["empty-file", "top-level-list", "missing-versions"])
def test_component_yml_outside_components_folder(name, tmp_path, cli):
    target = tmp_path / "packages" / "getty" / "component.yml"
    target.parent.mkdir(parents=True)
    shutil.copyfile(DATA / f"{name}.yml", target)

    result = cli("validate", tmp_path, cwd=tmp_path)

    assert result.returncode == 2
    reported = diagnostic_lines(result.stderr, target)
    for expected in expectations(DATA / f"{name}.yml"):
        assert is_reported(expected, target, reported), f"missing {expected!r} in:\n{result.stderr}"


def test_whole_folder_reports_every_case(tmp_path, cli, folder_snapshot):
    folder = tmp_path / "components"
    folder.mkdir()
    for path in case_files():
        shutil.copyfile(path, folder / path.name)
    before = folder_snapshot(tmp_path)

    result = cli("validate", tmp_path, cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{len(case_files())} files checked" in result.stderr
    for path in case_files():
        target = folder / path.name
        if path.stem in ACCEPTED_BY_BUG:
            continue
        reported = diagnostic_lines(result.stderr, target)
        assert reported, f"no problem reported for {path.name}"
        if path.stem not in KNOWN_BUGS:
            for expected in expectations(path):
                assert is_reported(expected, target, reported), f"{path.name}: missing {expected!r}"
    assert folder_snapshot(tmp_path) == before
