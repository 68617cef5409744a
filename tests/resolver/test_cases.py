"""Run every case in tests/data/resolver/ through loading, resolution and boot ordering.

`tests/resolver/casefiles.py` describes the case format and the layout of the written
files. A case whose file has an `xfail` key expects the correct result, which the
library does not produce yet. The key gives the reason, and the case is a strict xfail.
"""

from __future__ import annotations

import os

import pytest

from moby_asm.resolve import UnknownRequirement, Unresolvable
from moby_asm.resolve.order import OrderCycle

from .casefiles import DATA, Case, load_cases, run_case

CASES = load_cases()
FAILURE_KINDS = {"unresolvable": Unresolvable, "cycle": OrderCycle, "unknown": UnknownRequirement}
CASE_KEYS = {"catalog", "assembly", "locked", "upgrade", "upgrade_all", "expect", "xfail"}
EXPECT_KEYS = {"selection", "capabilities", "order", "backtracks", *FAILURE_KINDS}


def _params() -> list:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.data["xfail"])] if "xfail" in case.data else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(autouse=True)
def _private_index_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBY_ASM_CACHE_DIR", str(tmp_path / "cache"))


def test_case_count():
    assert len(CASES) >= 45


def test_cases_state_one_expectation():
    for case in CASES:
        kinds = [key for key in ("selection", *FAILURE_KINDS) if key in case.expect]
        assert len(kinds) == 1, f"{case.id}: expect exactly one of selection, unresolvable, cycle, unknown"


def test_cases_use_known_keys():
    for case in CASES:
        assert set(case.data) <= CASE_KEYS, f"{case.id}: unknown keys {set(case.data) - CASE_KEYS}"
        assert set(case.expect) <= EXPECT_KEYS, f"{case.id}: unknown expect keys {set(case.expect) - EXPECT_KEYS}"


def test_cases_start_with_description():
    for case in CASES:
        first_line = (DATA / f"{case.id}.yml").read_text().splitlines()[0]
        assert first_line.startswith("# "), f"{case.id}: the first line should say what the case checks"


@pytest.mark.parametrize("case", _params())
def test_case(case: Case, tmp_path):
    failure = next((kind for kind in FAILURE_KINDS if kind in case.expect), None)
    if failure is None:
        _check_selection(case, tmp_path)
    else:
        _check_failure(case, tmp_path, failure)


def _check_selection(case: Case, tmp_path) -> None:
    outcome = run_case(case, tmp_path)
    expect = case.expect

    assert outcome.selection == expect["selection"]
    if "capabilities" in expect:
        assert outcome.resolution.capabilities == expect["capabilities"]
    for stage, names in expect.get("order", {}).items():
        assert outcome.order[stage] == names, f"order of stage {stage}"
    if expect.get("backtracks"):
        assert outcome.resolution.conflicts > 0, "the case no longer makes the solver undo a decision"


def _check_failure(case: Case, tmp_path, kind: str) -> None:
    with pytest.raises(FAILURE_KINDS[kind]) as raised:
        run_case(case, tmp_path)
    # Positions are checked relative to the case folder, as `components/a.yml:5:5`.
    message = str(raised.value).replace(f"{tmp_path}{os.sep}", "")
    print(message)

    for fragment in case.expect[kind]:
        assert fragment in message, f"{fragment!r} is missing from:\n{message}"
