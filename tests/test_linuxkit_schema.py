"""Check LinuxKit configs with `moby-asm validate` and with `check_config`.

Each file in data/linuxkit/ is a LinuxKit config. A file without `# expect:` lines is
valid. A file with them lists every diagnostic that validation must report, in order, as
`# expect: LINE:COLUMN: MESSAGE` with the whole message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from moby_asm.catalog import runtime
from moby_asm.linuxkit import check_config, load_schema

DATA = Path(__file__).parent / "data" / "linuxkit"
EXPECT_LINE = re.compile(r"^# expect: (\d+:\d+: .+)$")

MINIMAL = {
    "kernel": {"image": "linuxkit/kernel:6.6.71", "cmdline": "console=ttyS0"},
    "init": ["linuxkit/init:e2c6a1afb6750ea766c7386c7f2115f6e28fda4d"],
    "services": [{"name": "getty", "image": "linuxkit/getty:v1", "env": ["INSECURE=true"]}],
}


def expectations(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [match.group(1) for match in map(EXPECT_LINE.match, lines) if match]


def case_files() -> list[Path]:
    return sorted(DATA.glob("*.yml"))


def valid_files() -> list[Path]:
    return [path for path in case_files() if not expectations(path)]


def invalid_files() -> list[Path]:
    return [path for path in case_files() if expectations(path)]


def params(paths: list[Path]) -> list:
    return [pytest.param(path, id=path.stem) for path in paths]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cli) -> dict[str, subprocess.CompletedProcess]:
    """Run `moby-asm validate` once for every data file, in parallel, keyed by file name.

    Valid files run with --json so that the test can check the kind that was detected.
    """
    workdir = tmp_path_factory.mktemp("linuxkit-runs")

    def run(path: Path) -> subprocess.CompletedProcess:
        options = ["--json"] if not expectations(path) else []
        return cli("validate", *options, path, cwd=workdir)

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) * 2) as pool:
        results = pool.map(run, case_files())
        return {path.name: result for path, result in zip(case_files(), results, strict=True)}


def reported(result: subprocess.CompletedProcess, path: Path) -> list[str]:
    """Return the `LINE:COLUMN: MESSAGE` part of each diagnostic reported for `path`."""
    prefix = f"{path}:"
    return [line[len(prefix) :] for line in result.stderr.splitlines() if line.startswith(prefix)]


def test_data_folder_has_enough_cases():
    assert len(case_files()) >= 15
    assert len(valid_files()) >= 6
    assert len(invalid_files()) >= 9


@pytest.mark.parametrize("path", params(valid_files()))
def test_valid_config_accepted(path, runs):
    result = runs[path.name]
    output = json.loads(result.stdout)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert output["problems"] == []
    assert output["checked"] == {str(path): "linuxkit"}


@pytest.mark.parametrize("path", params(invalid_files()))
def test_invalid_config_diagnostics(path, runs):
    result = runs[path.name]

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert reported(result, path) == expectations(path)


def test_check_config_accepts_valid_data():
    """check_config agrees with `moby-asm validate` on every valid data file."""
    for path in valid_files():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert check_config(data) == [], path.name


# check_config on configs held in memory


def test_check_config_accepts_minimal():
    assert check_config(MINIMAL) == []


def test_check_config_unknown_key_suggestion():
    config = {"services": [{"name": "sshd", "image": "linuxkit/sshd:v1", "capabilites": ["all"]}]}

    assert check_config(config) == ["unknown key 'capabilites' in services[0]; did you mean 'capabilities'?"]


def test_check_config_missing_required_keys():
    config = {"onboot": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}, {"name": "c"}]}

    assert check_config(config) == ["missing required key 'image' in onboot[2]"]


def test_check_config_duplicate_service_names():
    config = dict(MINIMAL, services=[{"name": "getty", "image": "a"}, {"name": "getty", "image": "b"}])

    assert check_config(config) == [
        "duplicate service name 'getty'; service names must be unique (services[0] uses it too)"
    ]


def test_check_config_onboot_names_may_repeat():
    config = {"onboot": [{"name": "sysctl", "image": "a"}, {"name": "sysctl", "image": "b"}]}

    assert check_config(config) == []


def test_check_config_mode_number_no_hint():
    """Without the file text there is no way to show `0644`, so no quoting hint is given."""
    config = {"files": [{"path": "etc/motd", "contents": "hi", "mode": 420}]}

    assert check_config(config) == ["expected a string for 'mode' in files[0], got 420 (a number)"]


CONTENT_KEYS = "'contents', 'source', 'metadata', 'directory' or 'symlink'"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "etc/a"}, f"files[0] sets none of {CONTENT_KEYS}; set exactly one"),
        (
            {"path": "etc/a", "directory": False},
            f"files[0] sets none of {CONTENT_KEYS}; set exactly one",
        ),
        (
            {"path": "etc/a", "directory": True, "contents": ""},
            f"files[0] sets 'contents' and 'directory'; set exactly one of {CONTENT_KEYS}",
        ),
    ],
    ids=["none", "directory-false", "two"],
)
def test_check_config_file_content_keys(entry, message):
    assert check_config({"files": [entry]}) == [message]


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "etc/a", "contents": ""},
        {"path": "etc/a", "source": "./a"},
        {"path": "etc/a", "metadata": "yaml"},
        {"path": "etc/a", "directory": True, "mode": "0755"},
        {"path": "etc/a", "symlink": "/etc/b"},
        {"path": "etc/a", "contents": "x", "directory": False},
    ],
    ids=["contents", "source", "metadata", "directory", "symlink", "contents-directory-false"],
)
def test_check_config_file_single_content_key(entry):
    assert check_config({"files": [entry]}) == []


def test_check_config_top_level_list():
    assert check_config([MINIMAL]) == ["expected a mapping for the top level, got a list"]


def test_check_config_every_problem_reported():
    config = {
        "kernel": {"image": "k", "cmdlin": "x"},
        "services": [{"name": "a", "image": "b", "uid": 1.5}],
        "volumes": [{"name": "v", "format": "squashfs"}],
    }

    assert check_config(config) == [
        "unknown key 'cmdlin' in kernel; did you mean 'cmdline'?",
        "expected an integer or a string for 'uid' in services[0], got 1.5 (a number)",
        "invalid value 'squashfs' for 'format' in volumes[0]; expected 'oci' or 'filesystem'",
    ]


def test_check_config_trust_accepted():
    assert check_config({"trust": {"org": ["linuxkit"], "image": ["linuxkit/kernel:6.6.71"]}}) == []


# The schema itself


def test_schema_is_valid_json_schema():
    from jsonschema.validators import validator_for

    schema = load_schema()

    validator_for(schema).check_schema(schema)


def object_schemas(schema: object, where: str = "#") -> list[tuple[str, object]]:
    """Return (location, additionalProperties) for every subschema of type object."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            found.append((where, schema.get("additionalProperties")))
        for key, value in schema.items():
            found.extend(object_schemas(value, f"{where}/{key}"))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found.extend(object_schemas(value, f"{where}/{index}"))
    return found


def test_schema_closes_every_mapping():
    objects = object_schemas(load_schema())
    open_objects = [where for where, extra in objects if extra is not False]

    assert len(objects) >= 20
    # sysctl and annotations map any key to a string.
    assert open_objects == ["#/$defs/stringMap"]


def schema_keys(name: str) -> set[str]:
    return set(load_schema()["$defs"][name]["properties"])


def model_keys(model) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize(
    ("definition", "model", "extra_in_schema"),
    [
        ("container", runtime.ContainerConfig, {"name", "image"}),
        ("runtime", runtime.RuntimeHooks, set()),
        ("interface", runtime.Interface, set()),
        ("namespacePaths", runtime.BindNamespaces, set()),
        ("device", runtime.Device, set()),
    ],
    ids=["container", "runtime", "interface", "bindNS", "device"],
)
def test_schema_matches_runtime_model(definition, model, extra_in_schema):
    assert schema_keys(definition) == model_keys(model) | extra_in_schema


def test_schema_mount_matches_runtime_model():
    assert schema_keys("mount") == model_keys(runtime.Mount)


def test_rendered_runtime_settings_are_valid():
    """Settings that catalog.runtime accepts render into a valid LinuxKit entry."""
    settings = runtime.ContainerConfig.model_validate(
        {
            "capabilities": ["CAP_NET_ADMIN"],
            "binds.add": ["/etc/resolv.conf:/etc/resolv.conf"],
            "devices": [{"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": "0666"}],
            "uid": "getty",
            "additionalGids": [10, "wheel"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "runtime": {"interfaces": [{"name": "wg0", "add": "wireguard", "createInRoot": True}]},
        }
    )
    entry = {"name": "getty", "image": "linuxkit/getty:v1", **settings.to_linuxkit()}

    assert check_config({"services": [entry]}) == []


# Detection by `moby-asm validate` and start-up cost


def validate_json(cli, folder: Path, name: str, text: str) -> dict:
    target = folder / name
    target.write_text(text, encoding="utf-8")
    result = cli("validate", "--json", target, cwd=folder)
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_validate_detects_by_keys(cli, tmp_path):
    output = validate_json(cli, tmp_path, "platform.yml", "onshutdown:\n  - name: bye\n    image: busybox\n")

    assert output["ok"] is True
    assert output["checked"] == {str(tmp_path / "platform.yml"): "linuxkit"}


def test_validate_versions_key_wins(cli, tmp_path):
    text = "name: k\nkernel: {image: x}\nversions: []\n"

    output = validate_json(cli, tmp_path, "kernel.yml", text)

    assert output["checked"] == {str(tmp_path / "kernel.yml"): "component"}


def test_validate_empty_linuxkit_file(cli, tmp_path):
    output = validate_json(cli, tmp_path, "linuxkit.yml", "# nothing yet\n")

    assert output["checked"] == {str(tmp_path / "linuxkit.yml"): "linuxkit"}
    assert [problem["message"] for problem in output["problems"]] == [
        "file is empty; expected a mapping with sections such as 'kernel' and 'services'"
    ]


def test_validate_unknown_kind_mentions_linuxkit(cli, tmp_path):
    output = validate_json(cli, tmp_path, "notes.yml", "title: notes\n")

    assert "LinuxKit config is named linuxkit.yml" in output["problems"][0]["message"]


def test_validate_imports_jsonschema_lazily():
    code = "import sys, moby_asm.validate, moby_asm.linuxkit; print('jsonschema' in sys.modules)"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert result.stdout.strip() == "False"
