"""The shipped example assemblies validate, have current locks and compose deterministically.

Each example is copied to a temporary folder and composed three times: twice from one
working directory and once from inside the project with relative paths. The copies keep
the repository untouched even if a lock turned out to be outdated.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moby_asm.linuxkit import check_config

from .helpers import EXAMPLES, EXAMPLES_FOLDER, explain, files_under, read_yaml

BUILD_FILES = [".moby-asm-build", "assembly.lock", "linuxkit.yml", "plan.json"]
INIT_ORDER = ["ca-certificates", "init", "runc", "containerd"]

# Boot order follows docs/assemblies.md: requirements and after/before hints first,
# then names alphabetically. Services are compared as sets because they start together.
EXPECTED_STAGES = {
    "debian-minimal": {"onboot": ["hello-onboot"], "services": {"hello-service"},
                       "kernel": "moby-asm.local/debian-kernel:deb-",
                       "init": ["debian-busybox", "debian-runc", "debian-containerd"]},
    "infrakit-manager": {
        "onboot": ["format", "mount", "sysctl", "dhcpcd"],
        "services": {"docker", "getty", "infrakit", "infrakit-flavor-swarm", "infrakit-flavor-vanilla",
                     "infrakit-group"},
    },
    "minimal": {"onboot": ["dhcpcd"], "services": {"getty"}},
    "redis-appliance": {"onboot": ["dhcpcd"], "services": {"redis"}},
    "sshd-server": {"onboot": ["rngd-boot", "sysctl", "dhcpcd"], "services": {"getty", "rngd", "sshd"}},
    "web-appliance": {"onboot": ["dhcpcd"], "services": {"hello-web"}},
    "swarm-node": {
        "onboot": ["format", "mount", "sysctl", "dhcpcd", "sysfs"],
        "services": {"docker", "getty", "openntpd", "swarm-mode"},
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run_all) -> dict[str, dict]:
    """Validate, check and compose every example, and return results and folders by example name."""
    root = tmp_path_factory.mktemp("examples")
    calls, keys = [], []
    for name in EXAMPLES:
        project = root / "projects" / name
        shutil.copytree(EXAMPLES_FOLDER / name, project)
        for run, cwd, target in (("first", root, project), ("second", root, project), ("inside", project, Path("."))):
            build = root / "builds" / f"{name}-{run}"
            output = build if cwd == root else Path("..", "..", "builds", f"{name}-{run}")
            calls.append((("compose", target, "-o", output), cwd))
            keys.append((name, run, build))
        calls.append((("lock", "--check", EXAMPLES_FOLDER / name), root))
        keys.append((name, "check", None))
    calls.append((("validate", "--json", *(EXAMPLES_FOLDER / name for name in EXAMPLES)), root))
    keys.append((None, "validate", None))

    results: dict[str, dict] = {name: {"project": root / "projects" / name} for name in EXAMPLES}
    for (name, run, build), result in zip(keys, run_all(calls), strict=True):
        if name is None:
            results["validate"] = result
            continue
        results[name][run] = result
        results[name][f"{run}-build"] = build
    return results


def composed(runs: dict, name: str, run: str = "first") -> Path:
    result = runs[name][run]
    assert result.returncode == 0, explain(result)
    return runs[name][f"{run}-build"]


def test_examples_are_found():
    assert len(EXAMPLES) >= 5
    assert set(EXPECTED_STAGES) == set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates(runs, name):
    result = runs["validate"]
    report = json.loads(result.stdout)
    assembly = str(EXAMPLES_FOLDER / name / "assembly.yml")
    lock = str(EXAMPLES_FOLDER / name / "assembly.lock")
    problems = [p for p in report["problems"] if p["path"].startswith(str(EXAMPLES_FOLDER / name))]

    assert report["checked"].get(assembly) == "assembly"
    assert report["checked"].get(lock) == "lock"
    assert problems == []
    assert result.returncode == 0, explain(result)


@pytest.mark.parametrize("name", EXAMPLES)
def test_shipped_lock_is_current(runs, name):
    result = runs[name]["check"]

    assert result.returncode == 0, explain(result)
    assert "is up to date" in result.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_compose_writes_build_files(runs, name):
    build = composed(runs, name)

    assert sorted(files_under(build)) == BUILD_FILES


@pytest.mark.parametrize("name", EXAMPLES)
def test_compose_keeps_current_lock(runs, name):
    build = composed(runs, name)
    shipped = (EXAMPLES_FOLDER / name / "assembly.lock").read_bytes()

    assert (build / "assembly.lock").read_bytes() == shipped
    assert (runs[name]["project"] / "assembly.lock").read_bytes() == shipped


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendered_config_passes_schema(runs, name):
    config = read_yaml(composed(runs, name) / "linuxkit.yml")

    assert check_config(config) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendered_sections_hold_components(runs, name):
    config = read_yaml(composed(runs, name) / "linuxkit.yml")
    expected = EXPECTED_STAGES[name]

    assert config["kernel"]["image"].startswith(expected.get("kernel", "linuxkit/kernel:6."))
    assert config["kernel"]["cmdline"]
    assert [image.split("/")[-1].split(":")[0] for image in config["init"]] == expected.get("init", INIT_ORDER)
    assert [entry["name"] for entry in config["onboot"]] == expected["onboot"]
    assert {entry["name"] for entry in config["services"]} == expected["services"]
    assert len(config["services"]) == len(expected["services"])
    assert "onshutdown" not in config


@pytest.mark.parametrize("name", EXAMPLES)
def test_rendered_entries_name_their_images(runs, name):
    config = read_yaml(composed(runs, name) / "linuxkit.yml")

    for entry in config["onboot"] + config["services"]:
        assert ":" in entry["image"], entry
        assert set(entry) >= {"name", "image"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_emits_one_step_per_output(runs, name):
    plan = json.loads((composed(runs, name) / "plan.json").read_text())
    assembly = read_yaml(EXAMPLES_FOLDER / name / "assembly.yml")
    emitted = [step["inputs"]["format"] for step in plan["steps"] if step["kind"] == "emit"]

    assert emitted == assembly.get("outputs", ["kernel+initrd"])
    assert plan["assembly"] == assembly["name"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_steps_refer_to_earlier_steps(runs, name):
    plan = json.loads((composed(runs, name) / "plan.json").read_text())
    ids = [step["id"] for step in plan["steps"]]

    assert len(ids) == len(set(ids))
    for position, step in enumerate(plan["steps"]):
        for dependency in step["after"]:
            assert dependency in ids, f"{step['id']} waits for unknown step {dependency}"
            assert ids.index(dependency) < position, f"{step['id']} waits for a later step {dependency}"
        assert step["key"].startswith("sha256:")


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_bundles_every_container(runs, name):
    build = composed(runs, name)
    plan = json.loads((build / "plan.json").read_text())
    config = read_yaml(build / "linuxkit.yml")
    bundled = {step["inputs"]["entry"]["name"] for step in plan["steps"] if step["kind"] == "bundle"}

    assert bundled == {entry["name"] for entry in config["onboot"] + config["services"]}


@pytest.mark.parametrize("name", EXAMPLES)
def test_compose_twice_gives_same_bytes(runs, name):
    first = files_under(composed(runs, name, "first"))
    second = files_under(composed(runs, name, "second"))

    assert first == second


@pytest.mark.parametrize("name", EXAMPLES)
def test_compose_from_project_folder_gives_same_bytes(runs, name):
    first = files_under(composed(runs, name, "first"))
    inside = files_under(composed(runs, name, "inside"))

    assert first == inside
