"""The compiled catalog index: unchanged files come from it, anything else is read again."""

from __future__ import annotations

import datetime
import gc
import json
import os
import time
from pathlib import Path

import pytest

from moby_asm.catalog import CatalogSource, load_catalog
from moby_asm.catalog import index as catalog_index
from moby_asm.documents import InvalidDocuments

HOUR_NS = 3600 * 1_000_000_000

DESCRIPTOR = """\
name: {name}
description: {description}
versions:
  - version: 1.0.0
    stage: service
    source:
      image: linuxkit/{name}:v1.0.0
    config:
      binds:
        - /var/log:/var/log
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(catalog_index.CACHE_DIR_VARIABLE, str(folder))
    return folder


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "components"
    folder.mkdir()
    write(folder / "getty.yml", DESCRIPTOR.format(name="getty", description="Login prompt"))
    write(folder / "sshd.yml", DESCRIPTOR.format(name="sshd", description="SSH server"))
    write(folder / "dhcpcd" / "component.yml", DESCRIPTOR.format(name="dhcpcd", description="DHCP client"))
    return folder


def write(path: Path, text: str, age_ns: int = HOUR_NS) -> Path:
    """Write a file dated `age_ns` in the past; the index stores only files older than a few seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    mtime_ns = time.time_ns() - age_ns
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def load(folder: Path):
    return load_catalog([CatalogSource("test", folder)])


def components(catalog) -> dict:
    return {entry.name: (entry.component, entry.path) for entry in catalog}


def stored_files(folder: Path) -> dict:
    return json.loads(catalog_index.index_file(folder).read_text(encoding="utf-8"))["files"]


def forbid_yaml_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(path: Path):
        raise AssertionError(f"{path} was parsed although the index has it")

    monkeypatch.setattr(catalog_index, "load_document", fail)


def test_warm_load_same_catalog(catalog_dir: Path, monkeypatch: pytest.MonkeyPatch):
    cold = load(catalog_dir)
    forbid_yaml_parsing(monkeypatch)
    warm = load(catalog_dir)

    assert components(warm) == components(cold)
    assert sorted(stored_files(catalog_dir)) == ["dhcpcd/component.yml", "getty.yml", "sshd.yml"]


def test_index_under_cache_dir(catalog_dir: Path, cache_dir: Path):
    load(catalog_dir)

    assert catalog_index.index_file(catalog_dir).parent == cache_dir / "catalog-index"
    assert catalog_index.index_file(catalog_dir).is_file()


def test_changed_file_is_reread(catalog_dir: Path):
    load(catalog_dir)
    write(catalog_dir / "getty.yml", DESCRIPTOR.format(name="getty", description="Serial console login"),
          age_ns=HOUR_NS // 2)

    catalog = load(catalog_dir)

    assert catalog.get("getty").component.description == "Serial console login"
    assert catalog.get("sshd").component.description == "SSH server"


def test_same_size_edit_within_clock_tick(catalog_dir: Path):
    # A file system with coarse timestamps gives both writes the same mtime.
    path = catalog_dir / "getty.yml"
    write(path, DESCRIPTOR.format(name="getty", description="aaaa"), age_ns=0)
    mtime_ns = path.stat().st_mtime_ns
    load(catalog_dir)
    path.write_text(DESCRIPTOR.format(name="getty", description="bbbb"), encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))

    catalog = load(catalog_dir)

    assert catalog.get("getty").component.description == "bbbb"


def test_removed_file_disappears(catalog_dir: Path):
    load(catalog_dir)
    (catalog_dir / "sshd.yml").unlink()

    catalog = load(catalog_dir)

    assert catalog.get("sshd") is None
    assert sorted(entry.name for entry in catalog) == ["dhcpcd", "getty"]
    assert "sshd.yml" not in stored_files(catalog_dir)


def test_added_file_appears(catalog_dir: Path):
    load(catalog_dir)
    write(catalog_dir / "rngd.yml", DESCRIPTOR.format(name="rngd", description="Entropy daemon"))

    catalog = load(catalog_dir)

    assert catalog.get("rngd").component.description == "Entropy daemon"
    assert "rngd.yml" in stored_files(catalog_dir)


@pytest.mark.parametrize("content", [
    b"{not json",
    b"",
    b"\xff\xfe garbage",
    b"[]",
    b'{"format": 1, "folder": "/elsewhere", "files": {}}',
    b'{"format": 999, "files": {}}',
], ids=["syntax", "empty", "binary", "list", "other-folder", "other-format"])
def test_corrupt_index_is_ignored(catalog_dir: Path, content: bytes):
    expected = components(load(catalog_dir))
    catalog_index.index_file(catalog_dir).write_bytes(content)

    catalog = load(catalog_dir)

    assert components(catalog) == expected
    assert sorted(stored_files(catalog_dir)) == ["dhcpcd/component.yml", "getty.yml", "sshd.yml"]


def _set_data(key: str, value):
    def tamper(record: dict) -> None:
        record["data"][key] = value
    return tamper


def _set_env(record: dict) -> None:
    record["data"]["versions"][0]["config"]["env"] = ["MODE=${undeclared}"]


@pytest.mark.parametrize("tamper", [
    _set_data("versions", "not a list"),
    _set_data("name", "other-name"),
    _set_env,
    lambda record: record.pop("data"),
    lambda record: record.update(data=None),
    lambda record: record.update(size="large"),
], ids=["versions-not-list", "other-name", "undeclared-placeholder", "no-data", "null-data", "size-not-number"])
def test_tampered_record_is_reread(catalog_dir: Path, tamper):
    expected = components(load(catalog_dir))
    path = catalog_index.index_file(catalog_dir)
    content = json.loads(path.read_text(encoding="utf-8"))
    tamper(content["files"]["getty.yml"])
    path.write_text(json.dumps(content), encoding="utf-8")

    catalog = load(catalog_dir)

    assert components(catalog) == expected
    assert stored_files(catalog_dir)["getty.yml"]["data"]["name"] == "getty"


def test_record_not_mapping_is_reread(catalog_dir: Path):
    expected = components(load(catalog_dir))
    path = catalog_index.index_file(catalog_dir)
    content = json.loads(path.read_text(encoding="utf-8"))
    content["files"]["getty.yml"] = ["not", "a", "record"]
    content["files"]["ghost.yml"] = content["files"]["sshd.yml"]
    path.write_text(json.dumps(content), encoding="utf-8")

    catalog = load(catalog_dir)

    assert components(catalog) == expected
    assert catalog.get("ghost") is None


def test_invalid_file_still_reported(catalog_dir: Path):
    load(catalog_dir)
    path = write(catalog_dir / "getty.yml", DESCRIPTOR.format(name="getty", description="Login prompt")
                 + "    restart: always\n", age_ns=HOUR_NS // 2)

    for _ in range(2):
        with pytest.raises(InvalidDocuments) as raised:
            load(catalog_dir)
        assert [str(d) for d in raised.value.diagnostics] == [f"{path}:11:5: unknown key 'restart'"]
    assert "getty.yml" not in stored_files(catalog_dir)
    assert "sshd.yml" in stored_files(catalog_dir)


def test_value_without_json_form(catalog_dir: Path):
    text = DESCRIPTOR.format(name="getty", description="Login prompt") + "      resources:\n        since: 2024-01-31\n"
    write(catalog_dir / "getty.yml", text)

    load(catalog_dir)
    catalog = load(catalog_dir)

    assert catalog.get("getty").component.versions[0].config.resources == {"since": datetime.date(2024, 1, 31)}
    assert "getty.yml" not in stored_files(catalog_dir)


def test_unwritable_cache_is_no_error(catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("", encoding="utf-8")
    monkeypatch.setenv(catalog_index.CACHE_DIR_VARIABLE, str(not_a_folder))

    catalog = load(catalog_dir)

    assert sorted(entry.name for entry in catalog) == ["dhcpcd", "getty", "sshd"]


def test_write_leaves_no_temporary_files(catalog_dir: Path, cache_dir: Path):
    load(catalog_dir)
    write(catalog_dir / "rngd.yml", DESCRIPTOR.format(name="rngd", description="Entropy daemon"))
    load(catalog_dir)

    assert [path.name for path in (cache_dir / "catalog-index").iterdir()] == [
        catalog_index.index_file(catalog_dir).name
    ]


def test_garbage_collector_on_after_load(catalog_dir: Path):
    load(catalog_dir)
    write(catalog_dir / "bad.yml", "name: [")

    with pytest.raises(InvalidDocuments):
        load(catalog_dir)

    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_frozen_objects_stay_frozen(catalog_dir: Path):
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        load(catalog_dir)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
