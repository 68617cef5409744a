"""Resolution of Debian packages against small in-memory Packages indexes, the way apt installs them."""

from __future__ import annotations

import pytest

from moby_asm.debian.index import PackageIndex
from moby_asm.debian.model import parse_relation
from moby_asm.debian.solver import Solver, UnsatisfiedPackage, satisfies

WHERE = "suite bookworm (main, amd64) of http://127.0.0.1:1/debian"
MIRROR = "http://127.0.0.1:1/debian"


def paragraph(name: str, version: str = "1.0", **fields: str) -> str:
    """Return one Packages paragraph; keyword names become fields, with '_' written as '-'."""
    lines = [f"Package: {name}", f"Version: {version}", "Architecture: amd64"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in fields.items()]
    lines += [f"Filename: pool/main/{name}_{version}_amd64.deb", f"SHA256: {'0' * 64}", "Size: 100"]
    return "\n".join(lines) + "\n"


def make_index(*paragraphs: str) -> PackageIndex:
    index = PackageIndex()
    index.add("\n".join(paragraphs).encode(), MIRROR)
    return index


def solve(index: PackageIndex, *requested: str, exclude: tuple[str, ...] = (),
          essential: bool = False) -> dict[str, str]:
    """Resolve `requested` relations and return the chosen versions by package name."""
    items = [parse_relation(text)[0][0] for text in requested]
    records = Solver(index, list(exclude), essential, WHERE).solve(items)
    return {record.name: record.version for record in records}


TOOL_VERSIONS = make_index(paragraph("tool", "1.0"), paragraph("tool", "2.0"), paragraph("tool", "1:0.5"),
                           paragraph("tool", "3.0~rc1"))


@pytest.mark.parametrize(("request_text", "expected"), [
    ("tool", "1:0.5"),
    ("tool (<< 1:0)", "3.0~rc1"),
    ("tool (<< 3.0)", "3.0~rc1"),
    ("tool (<< 3.0~rc1)", "2.0"),
    ("tool (<= 2.0)", "2.0"),
    ("tool (= 1.0)", "1.0"),
    ("tool (>= 1.5)", "1:0.5"),
    ("tool (>> 2.0)", "1:0.5"),
])
def test_requested_version_constraint(request_text, expected):
    assert solve(TOOL_VERSIONS, request_text) == {"tool": expected}


def test_requested_version_missing_lists_versions():
    with pytest.raises(UnsatisfiedPackage) as raised:
        solve(TOOL_VERSIONS, "tool (>> 1:0.5)")

    message = str(raised.value)
    assert "tool (>> 1:0.5)" in message
    assert WHERE in message
    assert "1:0.5, 3.0~rc1, 2.0, 1.0" in message


def test_dependency_constraint_picks_older_version():
    index = make_index(paragraph("app", Depends="lib (<< 2)"), paragraph("lib", "1.5"), paragraph("lib", "2.1"))

    assert solve(index, "app") == {"app": "1.0", "lib": "1.5"}


def test_alternatives_take_first_satisfiable():
    index = make_index(paragraph("app", Depends="ghost | old (>= 2) | second | third"), paragraph("old", "1.0"),
                       paragraph("second"), paragraph("third"))

    assert solve(index, "app") == {"app": "1.0", "second": "1.0"}


def test_alternative_met_by_chosen_package():
    index = make_index(paragraph("app", Depends="first | second"), paragraph("first"), paragraph("second"))

    assert solve(index, "app", "second") == {"app": "1.0", "second": "1.0"}


def test_virtual_package_through_provides():
    index = make_index(paragraph("app", Depends="mail-transport-agent"),
                       paragraph("tiny-mta", Provides="mail-transport-agent, sendmail"))

    assert solve(index, "app") == {"app": "1.0", "tiny-mta": "1.0"}


def test_real_package_before_virtual():
    index = make_index(paragraph("app", Depends="awk"), paragraph("mawk", Provides="awk"), paragraph("awk", "4.0"))

    assert solve(index, "app") == {"app": "1.0", "awk": "4.0"}


def test_virtual_package_met_by_chosen_provider():
    index = make_index(paragraph("app", Depends="awk"), paragraph("mawk", Provides="awk"),
                       paragraph("gawk", Provides="awk"))

    assert solve(index, "gawk", "app") == {"app": "1.0", "gawk": "1.0"}


def test_versioned_provides_met_when_chosen():
    index = make_index(paragraph("app", Depends="abi (>= 2)"), paragraph("impl", Provides="abi (= 2.1)"))

    assert solve(index, "impl", "app") == {"app": "1.0", "impl": "1.0"}


def test_versioned_provides_satisfies_versioned_dependency():
    index = make_index(paragraph("app", Depends="abi (>= 2)"), paragraph("impl", Provides="abi (= 2.1)"))

    assert solve(index, "app") == {"app": "1.0", "impl": "1.0"}


def test_pre_depends_followed():
    index = make_index(paragraph("app", Pre_Depends="early (>= 1.0)", Depends="late"),
                       paragraph("early", "1.2", Depends="early-lib"), paragraph("early-lib"), paragraph("late"))

    assert solve(index, "app") == {"app": "1.0", "early": "1.2", "early-lib": "1.0", "late": "1.0"}


ESSENTIAL_INDEX = make_index(
    paragraph("app", Depends="base-files, libc"),
    paragraph("base-files", Essential="yes", Depends="base-lib"),
    paragraph("dash", Essential="yes"),
    paragraph("base-lib"),
    paragraph("libc"),
)


def test_essential_skipped_by_default():
    assert solve(ESSENTIAL_INDEX, "app") == {"app": "1.0", "libc": "1.0"}


def test_essential_included_when_requested():
    chosen = solve(ESSENTIAL_INDEX, "app", essential=True)

    assert chosen == {"app": "1.0", "base-files": "1.0", "base-lib": "1.0", "dash": "1.0", "libc": "1.0"}


def test_essential_package_named_in_request():
    assert solve(ESSENTIAL_INDEX, "base-files") == {"base-files": "1.0", "base-lib": "1.0"}


def test_exclude_drops_dependency_tree():
    index = make_index(paragraph("app", Depends="big, small"), paragraph("big", Depends="bigger"),
                       paragraph("bigger"), paragraph("small"))

    assert solve(index, "app", exclude=("big",)) == {"app": "1.0", "small": "1.0"}


def test_exclude_covers_missing_dependency():
    index = make_index(paragraph("app", Depends="ghost (>= 3)"))

    assert solve(index, "app", exclude=("ghost",)) == {"app": "1.0"}


def test_missing_dependency_names_parent():
    index = make_index(paragraph("app", "2.0-1", Depends="lib"), paragraph("lib", "1.0", Depends="ghost (>= 3)"))

    with pytest.raises(UnsatisfiedPackage) as raised:
        solve(index, "app")

    message = str(raised.value)
    assert message.startswith("lib 1.0 depends on ghost (>= 3)")
    assert WHERE in message
    assert "exclude" in message


def test_missing_alternatives_all_named():
    index = make_index(paragraph("app", Depends="ghost | phantom (>= 1)"))

    with pytest.raises(UnsatisfiedPackage) as raised:
        solve(index, "app")

    assert "app 1.0 depends on ghost | phantom (>= 1)" in str(raised.value)


def test_missing_requested_package():
    with pytest.raises(UnsatisfiedPackage) as raised:
        solve(make_index(paragraph("app")), "ghost")

    assert "requested package ghost is not in" in str(raised.value)
    assert "versions there: none" in str(raised.value)


def test_dependency_cycle_resolves():
    index = make_index(paragraph("alpha", Depends="beta"), paragraph("beta", Depends="alpha (>= 1.0)"))

    assert solve(index, "alpha") == {"alpha": "1.0", "beta": "1.0"}


def test_index_merges_several_files():
    index = make_index(paragraph("tool", "1.0"))
    index.add(paragraph("tool", "2.0").encode(), "http://127.0.0.1:2/debian")

    versions = index.versions("tool")

    assert [record.version for record in versions] == ["2.0", "1.0"]
    assert versions[0].mirror == "http://127.0.0.1:2/debian"
    assert versions[1].mirror == MIRROR


def test_index_reads_multiline_provides():
    index = make_index(paragraph("multi", Provides="first-virtual (= 1),\n second-virtual,\n third:any"))

    assert index.providers("first-virtual") == ["multi"]
    assert index.providers("second-virtual") == ["multi"]
    assert index.providers("third") == ["multi"]


def test_record_lists_lock_fields():
    record = make_index(paragraph("tool", "1:2.0-1")).versions("tool")[0]

    assert record.record() == {"name": "tool", "version": "1:2.0-1", "architecture": "amd64",
                               "filename": "pool/main/tool_1:2.0-1_amd64.deb", "sha256": "0" * 64, "size": 100}


@pytest.mark.parametrize(("version", "constraint", "expected"), [
    ("1.0", None, True),
    ("1.0~rc1", ("<<", "1.0"), True),
    ("1.0+deb12u1", (">>", "1.0"), True),
    ("2:0.1", (">=", "1:9.9"), True),
    ("1.0-1", ("=", "1.0-1"), True),
    ("1.0-2", ("<=", "1.0-1"), False),
])
def test_satisfies_uses_debian_order(version, constraint, expected):
    assert satisfies(version, constraint) is expected
