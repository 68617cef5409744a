"""Unit tests of the YAML loader (`parse_document`, `load_document`) and `validate_document`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from moby_asm.catalog.model import Component
from moby_asm.documents import (
    Diagnostic,
    InvalidDocuments,
    load_document,
    loader,
    parse_document,
    validate_document,
)

PATH = Path("components/demo.yml")

NESTED = """\
name: demo
versions:
  - version: 1.0.0
    stage: service
    source:
      image: linuxkit/getty:v1.0.0
    config:
      binds:
        - /etc/a:/etc/a
        - /etc/b:/etc/b
      devices: [{path: /dev/console, type: c, major: 5, minor: 1}]
"""

SERVICE_CONFIG = """\
name: demo
versions:
  - version: 1.0.0
    stage: service
    source:
      image: linuxkit/getty:v1.0.0
    config:
"""

FILES_ONLY = """\
name: demo
versions:
  - version: 1.0.0
    stage: files
    files:
"""

BILLION_LAUGHS = (
    "a: &a ["
    + ", ".join(['"lol"'] * 9)
    + "]\n"
    + "".join(
        f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        for previous, name in zip("abcdefgh", "bcdefghi")
    )
)


def problems(text: str) -> list[Diagnostic]:
    """Parse `text` and return the diagnostics it raises; fail the test when it parses cleanly."""
    with pytest.raises(InvalidDocuments) as raised:
        parse_document(text, PATH)
    return raised.value.diagnostics


def validation_problems(text: str) -> list[Diagnostic]:
    with pytest.raises(InvalidDocuments) as raised:
        validate_document(parse_document(text, PATH), Component)
    return raised.value.diagnostics


def aliases_of_99_items(count: int) -> str:
    """Return a document whose `count` aliases each add 100 nodes: the list and its 99 items."""
    items = ", ".join(["x"] * 99)
    return f"base: &base [{items}]\nuses:\n" + "".join("  - *base\n" for _ in range(count))


# Positions


@pytest.mark.parametrize(
    ("loc", "at_key", "expected"),
    [
        (("name",), False, (1, 7)),
        (("versions", 0), False, (3, 5)),
        (("versions", 0, "source", "image"), False, (6, 14)),
        (("versions", 0, "config"), True, (7, 5)),
        (("versions", 0, "config"), False, (8, 7)),
        (("versions", 0, "config", "binds", 1), False, (10, 11)),
        (("versions", 0, "config", "devices", 0, "type"), False, (11, 44)),
        (("versions", 0, "config", "devices", 0, "major"), True, (11, 47)),
    ],
)
def test_position_of_nested_node(loc, at_key, expected):
    document = parse_document(NESTED, PATH)

    assert document.position(loc, at_key=at_key) == expected


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("versions", 0, "nothing", "deeper"), (3, 5)),
        (("versions", 7), (3, 3)),
        (("versions", 0, "config", "binds", "key-on-a-list"), (9, 9)),
        ((), (1, 1)),
    ],
)
def test_missing_path_gives_deepest_position(loc, expected):
    document = parse_document(NESTED, PATH)

    assert document.position(loc) == expected


def test_diagnostic_text_format():
    document = parse_document(NESTED, PATH)

    diagnostic = document.diagnostic(("versions", 0, "stage"), "invalid stage")

    assert str(diagnostic) == f"{PATH}:4:12: invalid stage"


def test_empty_document_has_no_root():
    document = parse_document("# only a comment\n", PATH)

    assert document.data is None
    assert document.position(("name",)) == (1, 1)


# Loader choice


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
def test_libyaml_loader_used_when_available():
    assert loader.Loader is yaml.CSafeLoader


def test_pure_python_loader_same_positions(monkeypatch):
    fast = parse_document(NESTED, PATH)
    monkeypatch.setattr(loader, "Loader", yaml.SafeLoader)
    slow = parse_document(NESTED, PATH)

    assert slow.data == fast.data
    for loc in [
        ("name",),
        ("versions", 0, "config", "binds", 1),
        ("versions", 0, "config", "devices", 0, "type"),
    ]:
        assert slow.position(loc) == fast.position(loc)


def test_data_matches_yaml_safe_load():
    text = (
        NESTED
        + "labels: {count: '3', flag: 'true'}\nextra: [1, 2.5, true, null, ~, 0x10, 'quoted']\n"
    )

    assert parse_document(text, PATH).data == yaml.safe_load(text)


# Rejected YAML


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", (3, 1), "duplicate key 'a'; each key may appear once in a mapping"),
        ("a:\n  b: 1\n  b: 1\n", (3, 3), "duplicate key 'b'"),
        ("1: one\n", (1, 1), "mapping keys must be strings, got '1'; quote the key"),
        ("true: yes\n", (1, 1), "mapping keys must be strings, got 'true'"),
        ("~: nothing\n", (1, 1), "mapping keys must be strings, got '~'"),
        (
            "base: &base {a: 1}\nother:\n  <<: *base\n",
            (3, 3),
            "merge keys ('<<') are not supported",
        ),
        (
            "a: !custom text\n",
            (1, 4),
            "unsupported YAML tag '!custom' on value 'text'; remove the tag",
        ),
        (
            "a: !!python/name:os.system ''\n",
            (1, 4),
            "unsupported YAML tag 'tag:yaml.org,2002:python/name:os.system'",
        ),
        ("a: !!int abc\n", (1, 4), "invalid value 'abc' for tag 'tag:yaml.org,2002:int'"),
        (
            "a: 1\n---\nb: 2\n",
            (3, 1),
            "invalid YAML: a project file holds one YAML document; found a second one",
        ),
        ("a: 1\n...\n---\nb: 2\n", (4, 1), "found a second one"),
        ("a: &loop [x, *loop]\n", (1, 4), "recursive alias: a node contains itself"),
        ("a: &loop {b: *loop}\n", (1, 4), "recursive alias: a node contains itself"),
        ("a: *missing\n", (1, 4), "invalid YAML: found undefined alias"),
        (
            "a: [1, 2\n",
            (1, 4),
            "invalid YAML: while parsing a flow sequence at line 1, did not find expected ',' or ']'",
        ),
        (
            'a: "text\n',
            (1, 4),
            "invalid YAML: while scanning a quoted scalar at line 1, found unexpected end of stream",
        ),
        (
            "a:\n\t- b\n",
            (2, 1),
            "found character that cannot start any token; "
            "indent with spaces, YAML does not allow tabs there",
        ),
        (
            "a:\n  b: 1\n\tc: 2\n",
            (3, 1),
            "indent with spaces, YAML does not allow tabs there",
        ),
    ],
)
def test_loader_rejects(text, position, message):
    reported = problems(text)

    assert len(reported) == 1
    assert (reported[0].line, reported[0].column) == position
    assert message in reported[0].message


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/tuple [1, 2]\n", "tag:yaml.org,2002:python/tuple"),
        ("a: !custom {b: 1}\n", "!custom"),
        ("a: !!set {b}\n", "tag:yaml.org,2002:set"),
    ],
)
def test_loader_rejects_tag_on_collection(text, tag):
    reported = problems(text)

    assert len(reported) == 1
    assert (reported[0].line, reported[0].column) == (1, 4)
    assert reported[0].message == f"unsupported YAML tag {tag!r} on a collection; remove the tag"


def test_collection_key_message_wording():
    reported = problems("? [a, b]\n: 1\n")

    assert len(reported) == 1
    assert (reported[0].line, reported[0].column) == (1, 3)
    assert reported[0].message == "mapping keys must be strings, got a list or mapping"


@pytest.mark.parametrize(
    "text", ["a: !!str 1\n", "a: !!seq [1]\n", "a: !!map {b: 1}\n", "'1': one\n"]
)
def test_loader_accepts_standard_tags(text):
    assert parse_document(text, PATH).data == yaml.safe_load(text)


def test_loader_reports_every_problem_at_once():
    text = "a: 1\na: 2\n3: x\nb: !custom y\nc:\n  <<: {d: 1}\n"

    reported = problems(text)

    assert [(d.line, d.column) for d in reported] == [(2, 1), (3, 1), (4, 4), (6, 3)]
    assert "duplicate key 'a'" in reported[0].message
    assert "mapping keys must be strings" in reported[1].message
    assert "unsupported YAML tag '!custom'" in reported[2].message
    assert "merge keys" in reported[3].message


def test_load_document_rejects_invalid_utf8(tmp_path):
    path = tmp_path / "demo.yml"
    path.write_bytes(b"name: demo\ndescription: caf\xe9\n")

    with pytest.raises(InvalidDocuments) as raised:
        load_document(path)

    assert len(raised.value.diagnostics) == 1
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.path == path
    # The byte 0xE9 follows the 16 characters "description: caf" on line 2.
    assert (diagnostic.line, diagnostic.column) == (2, 17)
    assert diagnostic.message == (
        "file is not valid UTF-8: byte 0xe9 (invalid continuation byte); save it as UTF-8"
    )


# Aliases


def test_billion_laughs_rejected_fast():
    started = time.perf_counter()
    reported = problems(BILLION_LAUGHS)
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    assert len(reported) == 1
    # The aliases of `&d` on line 4 are the first to push the count past the limit.
    assert (reported[0].line, reported[0].column) == (4, 4)
    assert reported[0].message == (
        f"aliases of the anchor defined here expand to more than {loader.MAX_ALIAS_NODES} "
        "nodes; write the repeated content out or use fewer aliases"
    )


def test_alias_limit_boundary():
    assert loader.MAX_ALIAS_NODES == 10_000

    accepted = parse_document(aliases_of_99_items(100), PATH)
    assert len(accepted.data["uses"]) == 100

    rejected = problems(aliases_of_99_items(101))
    assert len(rejected) == 1
    assert (rejected[0].line, rejected[0].column) == (1, 7)
    assert "aliases of the anchor defined here expand to more than 10000 nodes" in rejected[0].message


def test_small_alias_accepted_and_expanded():
    text = (
        "defaults: &defaults\n"
        "  net: host\n"
        "  binds: [/etc/a:/etc/a]\n"
        "first: *defaults\n"
        "second: *defaults\n"
    )

    data = parse_document(text, PATH).data

    assert data["first"] == {"net": "host", "binds": ["/etc/a:/etc/a"]}
    assert data["second"] == data["first"]
    assert data["second"] is not data["first"]


def test_alias_position_is_the_anchored_node():
    text = "image: &image linuxkit/getty:v1.0.0\nother: *image\n"

    document = parse_document(text, PATH)

    assert document.data["other"] == "linuxkit/getty:v1.0.0"
    assert document.position(("other",)) == (1, 8)


# Validation against a model


def test_validate_document_returns_model():
    component = validate_document(parse_document(NESTED, PATH), Component)

    assert component.name == "demo"
    assert component.versions[0].config.binds == ["/etc/a:/etc/a", "/etc/b:/etc/b"]


def test_validate_empty_document():
    with pytest.raises(InvalidDocuments) as raised:
        validate_document(parse_document("", PATH), Component)

    assert str(raised.value) == f"{PATH}:1:1: file is empty; expected a mapping"


def test_unknown_key_suggests_closest_key():
    reported = validation_problems(NESTED.replace("binds:", "bnids:"))

    assert [str(d) for d in reported] == [f"{PATH}:8:7: unknown key 'bnids'; did you mean 'binds'?"]


def test_unknown_key_suggests_alias_spelling():
    reported = validation_problems(NESTED.replace("binds:", "binds-add:"))

    assert reported[0].message == "unknown key 'binds-add'; did you mean 'binds.add'?"


@pytest.mark.parametrize(
    ("field_name", "key"),
    [
        ("binds_add", "binds.add"),
        ("masked_paths", "maskedPaths"),
        ("additional_gids", "additionalGids"),
        ("uid_mappings", "uidMappings"),
    ],
)
def test_python_field_name_rejected(field_name, key):
    reported = validation_problems(NESTED.replace("binds:", f"{field_name}:"))

    assert [str(d) for d in reported] == [
        f"{PATH}:8:7: unknown key {field_name!r}; did you mean {key!r}?"
    ]


def test_unrelated_unknown_key_has_no_suggestion():
    reported = validation_problems(NESTED.replace("binds:", "zzzzzz:"))

    assert reported[0].message == "unknown key 'zzzzzz'"


def test_stage_typo_suggests_literal():
    reported = validation_problems(NESTED.replace("stage: service", "stage: onbot"))

    assert (reported[0].line, reported[0].column) == (4, 12)
    assert reported[0].message.endswith("did you mean 'onboot'?")


def test_missing_key_reported_at_its_mapping():
    reported = validation_problems(NESTED.replace("    stage: service\n", ""))

    assert [(d.line, d.column, d.message) for d in reported] == [
        (3, 5, "missing required key 'stage'")
    ]


def test_number_for_string_gets_quote_hint():
    reported = validation_problems(NESTED.replace("name: demo", "name: 12"))

    assert (
        reported[0].message
        == 'expected a string, got 12 (a number); quote it as "12" to keep it a string'
    )


def test_validation_reports_every_problem_sorted():
    text = (
        NESTED.replace("name: demo", "name: Demo")
        .replace("stage: service", "stage: servce")
        .replace("type: c", "type: q")
        + "labels: {tier: 1}\n"
    )

    reported = validation_problems(text)

    assert [(d.line, d.column) for d in reported] == [(1, 7), (4, 12), (11, 44), (12, 16)]
    assert "invalid name 'Demo'" in reported[0].message
    assert "invalid value 'servce'" in reported[1].message
    assert "invalid value 'q'" in reported[2].message
    assert "expected a string, got 1" in reported[3].message


def test_invalid_documents_message_lists_all():
    diagnostics = [Diagnostic(PATH, 3, 1, "second"), Diagnostic(PATH, 1, 2, "first")]

    error = InvalidDocuments(diagnostics)

    assert str(error) == f"{PATH}:1:2: first\n{PATH}:3:1: second"


@pytest.mark.parametrize(
    "config",
    [
        "      devices: [{path: all, type: b}]\n",
        "      mounts: [{type: cgroup, options: [ro]}]\n",
        "      mounts:\n"
        "        - type: tmpfs\n"
        "          destination: /run\n"
        "          options: [rw]\n"
        "          uidmappings: [{containerID: 0, hostID: 100000, size: 65536}]\n"
        "          gidmappings: [{containerID: 0, hostID: 100000, size: 65536}]\n",
    ],
    ids=["device-without-numbers", "mount-without-destination", "mount-id-mappings"],
)
def test_linuxkit_config_forms_accepted(config):
    component = validate_document(parse_document(SERVICE_CONFIG + config, PATH), Component)

    assert component.versions[0].config.to_linuxkit() == yaml.safe_load(config)


def test_directory_false_next_to_contents_accepted():
    text = FILES_ONLY + "      - {path: etc/motd, directory: false, contents: welcome}\n"

    entry = validate_document(parse_document(text, PATH), Component).versions[0].files[0]

    assert entry.contents == "welcome"
    assert entry.directory is False


def test_directory_true_next_to_contents_rejected():
    text = FILES_ONLY + "      - {path: etc/motd, directory: true, contents: welcome}\n"

    reported = validation_problems(text)

    assert [(d.line, d.column) for d in reported] == [(6, 9)]
    assert reported[0].message == (
        "file 'etc/motd' sets exactly one of contents, source, metadata, directory, symlink; "
        "found contents, directory"
    )


@pytest.mark.parametrize(
    ("config", "position", "message"),
    [
        ("      uid: [0]\n", (8, 7), "expected a number or a name, got a list"),
        ("      gid: 1.5\n", (8, 12), "expected a number or a name, got 1.5 (a number)"),
        ("      additionalGids: [wheel, [1]]\n", (8, 31), "expected a number or a name, got a list"),
        ("      uid: yes\n", (8, 12), "expected a number or a name, got yes (a boolean)"),
        ("      gid: 2024-01-01\n", (8, 12), "expected a number or a name, got 2024-01-01 (a date)"),
    ],
)
def test_id_or_name_message(config, position, message):
    reported = validation_problems(SERVICE_CONFIG + config)

    assert len(reported) == 1
    assert (reported[0].line, reported[0].column) == position
    assert reported[0].message == message


def test_requirement_number_message():
    reported = validation_problems(SERVICE_CONFIG.replace("    config:\n", "    requires: [42]\n"))

    assert [(d.line, d.column) for d in reported] == [(7, 16)]
    assert reported[0].message == (
        "expected 'NAME [RANGE]' or a mapping with name, range and optional; got 42"
    )
