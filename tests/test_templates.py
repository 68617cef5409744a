"""The shipped cookiecutter templates render projects that validate and compose, and reject invalid answers."""

import json
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from moby_asm.shipped import shipped_folder

TEMPLATES = shipped_folder("templates")
TEMPLATE_NAMES = ["minimal-node", "swarm-node", "app-appliance"]
MINIMAL_NODE = TEMPLATES / "minimal-node"
SWARM_NODE = TEMPLATES / "swarm-node"
APP_APPLIANCE = TEMPLATES / "app-appliance"
# The kernel command line of every kernel version in the shipped components/kernel.yml.
SHIPPED_KERNEL_CMDLINE = "console=tty0 console=ttyS0 console=ttyAMA0 console=ttysclp0"
NAME_RULE = "use lowercase letters, digits and '-'"

ANSWERS = [
    {},
    {"project_name": "edge-1", "console_login": "no console login", "authorized_key": "ssh-ed25519 AAAA admin@x"},
]


@pytest.fixture
def render(tmp_path):
    """Return a function that renders a template without prompts into tmp_path/out and returns the project folder.

    A private cookiecutter configuration keeps replay files and downloaded templates out
    of the user's home folder.
    """
    config = tmp_path / "cookiecutter.yml"
    config.write_text(
        yaml.safe_dump({"replay_dir": str(tmp_path / "replay"), "cookiecutters_dir": str(tmp_path / "downloads")})
    )

    def run(template: Path, answers: dict, **options) -> Path:
        if "replay" not in options:
            options.update(no_input=True, extra_context=answers)
        project = cookiecutter(str(template), output_dir=str(tmp_path / "out"), config_file=str(config), **options)
        return Path(project)

    return run


@pytest.fixture
def compose(tmp_path, cli):
    """Return a function that validates and composes a project and returns its linuxkit.yml as a mapping."""

    def run(project: Path) -> dict:
        validated = cli("validate", project, cwd=tmp_path)
        composed = cli("compose", project, "-o", tmp_path / "build", cwd=tmp_path)

        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert composed.returncode == 0, composed.stderr
        return yaml.safe_load((tmp_path / "build" / "linuxkit.yml").read_text())

    return run


def file_contents(config: dict) -> dict[str, str]:
    """Return the contents of each file entry of a LinuxKit config by path."""
    return {entry["path"]: entry.get("contents") for entry in config.get("files", [])}


def service(config: dict, name: str) -> dict:
    return next(entry for entry in config["services"] if entry["name"] == name)


@pytest.mark.parametrize("answers", ANSWERS, ids=["defaults", "ssh-only"])
def test_minimal_node_composes(tmp_path, cli, render, answers):
    project = render(MINIMAL_NODE, answers)

    validated = cli("validate", project, cwd=tmp_path)
    composed = cli("compose", project, "-o", tmp_path / "build", "--json", cwd=tmp_path)

    assert validated.returncode == 0, validated.stderr
    assert composed.returncode == 0, composed.stderr
    services = [item["name"] for item in json.loads(composed.stdout)["stages"]["service"]]
    assert ("getty" in services) == ("console_login" not in answers)
    assert ("sshd" in services) == ("authorized_key" in answers)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_metadata(name):
    context = json.loads((TEMPLATES / name / "cookiecutter.json").read_text())

    metadata = context["_moby_asm"]
    assert metadata["name"] == name
    assert metadata["version"] == "1.0.0"
    assert metadata["description"]
    assert metadata["source"] == f"templates/{name}"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_prompts_every_question(name):
    context = json.loads((TEMPLATES / name / "cookiecutter.json").read_text())
    questions = [key for key in context if not key.startswith("_")]
    prompts = context["__prompts__"]

    assert sorted(prompts) == sorted(questions)
    for key, default in context.items():
        if key in questions and isinstance(default, list):
            assert prompts[key]["__prompt__"], key
            assert sorted(set(prompts[key]) - {"__prompt__"}) == sorted(default), key


SWARM_CASES = {
    "defaults": {},
    "worker-ssh-extras": {
        "project_name": "swarm-worker-1",
        "hostname": "worker-1.cluster.internal",
        "authorized_key": "ssh-ed25519 AAAA admin@x",
        "swarm_role": "worker",
        "advertise_address": "10.0.0.5",
        "join_token_file": "/run/config/swarm/token",
        "kernel_cmdline_extras": "quiet panic=10",
    },
    "manager-token-ignored": {"swarm_role": "manager", "join_token_file": "/run/config/swarm/token"},
    "worker-without-token": {"swarm_role": "worker", "advertise_address": "eth1"},
}


@pytest.mark.parametrize("answers", SWARM_CASES.values(), ids=SWARM_CASES.keys())
def test_swarm_node_composes(render, compose, answers):
    role = answers.get("swarm_role", "manager")
    address = answers.get("advertise_address", "eth0")
    project = render(SWARM_NODE, answers)

    config = compose(project)

    services = sorted(entry["name"] for entry in config["services"])
    expected_services = ["docker", "getty", "openntpd", "swarm-mode"]
    expected_services += ["sshd"] if "authorized_key" in answers else []
    assert services == sorted(expected_services)
    onboot = [entry["name"] for entry in config["onboot"]]
    assert {"format", "mount", "sysctl", "sysfs", "dhcpcd"} <= set(onboot)
    command = service(config, "docker")["command"]
    assert f"--label=swarm-role={role}" in command
    assert f"--swarm-default-advertise-addr={address}" in command
    files = file_contents(config)
    assert files["etc/hostname"] == answers.get("hostname", project.name) + "\n"
    joining = " ".join(service(config, "swarm-mode")["command"])
    assert f'[ "{role}" = manager ]' in joining
    assert f'--advertise-addr "{address}"' in joining
    assert f'cat "{answers.get("join_token_file", "/run/config/swarm/token")}"' in joining
    extras = answers.get("kernel_cmdline_extras")
    assert config["kernel"]["cmdline"] == (f"{SHIPPED_KERNEL_CMDLINE} {extras}" if extras else SHIPPED_KERNEL_CMDLINE)
    if "authorized_key" in answers:
        assert files["root/.ssh/authorized_keys"] == answers["authorized_key"]


APP_CASES = {
    "defaults": {},
    "custom": {
        "project_name": "shop-box",
        "app_name": "shop",
        "hostname": "shop-1.example.org",
        "port": "80",
        "base_image": "alpine:3.20",
        "kernel_range": ">=6.6 <6.13",
    },
    "highest-port": {"app_name": "api-2", "port": "65535"},
    "integer-port": {"port": 443},
}


@pytest.mark.parametrize("answers", APP_CASES.values(), ids=APP_CASES.keys())
def test_app_appliance_composes(render, compose, answers):
    app = answers.get("app_name", "app")
    port = str(answers.get("port", "8080"))
    project = render(APP_APPLIANCE, answers)

    config = compose(project)

    assert [entry["name"] for entry in config["services"]] == [app]
    entry = service(config, app)
    assert entry["image"].startswith(f"moby-asm.local/{app}:")
    assert entry["command"] == ["httpd", "-f", "-v", "-p", port, "-h", "/www"]
    assert file_contents(config)["etc/hostname"] == answers.get("hostname", project.name) + "\n"


@pytest.mark.parametrize("answers", APP_CASES.values(), ids=APP_CASES.keys())
def test_app_appliance_build_context(render, answers):
    app = answers.get("app_name", "app")
    project = render(APP_APPLIANCE, answers)

    descriptor = yaml.safe_load((project / "components" / f"{app}.yml").read_text())
    source = descriptor["versions"][0]["source"]
    assert descriptor["name"] == app
    assert source["build"]["context"] == app
    assert source["build"]["args"]["BASE"] == answers.get("base_image", "busybox:1.36")
    context = project / "components" / app
    assert (context / "Dockerfile").is_file()
    assert (context / "www" / "index.html").is_file()


INVALID_CASES = [
    (MINIMAL_NODE, {"project_name": "My Node"}, f"invalid project_name 'My Node': {NAME_RULE}"),
    (MINIMAL_NODE, {"description": "one\nname: two"}, "invalid description 'one\\nname: two'"),
    (MINIMAL_NODE, {"kernel_range": "^6.6\n  - sshd"}, "invalid kernel_range '^6.6\\n  - sshd'"),
    (SWARM_NODE, {"project_name": "node_1"}, f"invalid project_name 'node_1': {NAME_RULE}"),
    (SWARM_NODE, {"hostname": "-node"}, "invalid hostname '-node'"),
    (SWARM_NODE, {"hostname": "a" * 64}, f"invalid hostname '{'a' * 64}'"),
    (SWARM_NODE, {"advertise_address": "eth0 --debug"}, "invalid advertise_address 'eth0 --debug'"),
    (SWARM_NODE, {"advertise_address": ""}, "invalid advertise_address ''"),
    (SWARM_NODE, {"join_token_file": "run/token"}, "invalid join_token_file 'run/token'"),
    (SWARM_NODE, {"join_token_file": "/run/../etc/shadow"}, "invalid join_token_file '/run/../etc/shadow'"),
    (SWARM_NODE, {"join_token_file": "/run/$(id)"}, "invalid join_token_file '/run/$(id)'"),
    (SWARM_NODE, {"kernel_cmdline_extras": "quiet\nroot=/dev/sda"}, "invalid kernel_cmdline_extras"),
    (APP_APPLIANCE, {"project_name": "-box"}, f"invalid project_name '-box': {NAME_RULE}"),
    (APP_APPLIANCE, {"app_name": "My App"}, f"invalid app_name 'My App': {NAME_RULE}"),
    (APP_APPLIANCE, {"app_name": "containerd"}, "invalid app_name 'containerd': the appliance already requires"),
    (APP_APPLIANCE, {"port": "0"}, "invalid port '0': give an integer from 1 to 65535"),
    (APP_APPLIANCE, {"port": "65536"}, "invalid port '65536'"),
    (APP_APPLIANCE, {"port": "80a"}, "invalid port '80a'"),
    (APP_APPLIANCE, {"port": "-1"}, "invalid port '-1'"),
    (APP_APPLIANCE, {"port": ""}, "invalid port ''"),
    (APP_APPLIANCE, {"base_image": "busybox 1.36"}, "invalid base_image 'busybox 1.36'"),
    (APP_APPLIANCE, {"base_image": "Busybox:1.36"}, "invalid base_image 'Busybox:1.36'"),
]


@pytest.mark.parametrize(
    ("template", "answers", "message"),
    INVALID_CASES,
    ids=[f"{template.name}-{'-'.join(answers)}-{index}" for index, (template, answers, _) in enumerate(INVALID_CASES)],
)
def test_invalid_answer_stops_rendering(render, tmp_path, capfd, template, answers, message):
    with pytest.raises(FailedHookException):
        render(template, answers)

    assert f"error: {message}" in capfd.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_hook_reads_quoted_answers(render):
    description = 'Quotes """ \' and a backslash \\ in one line'
    project = render(MINIMAL_NODE, {"description": description})

    assembly = yaml.safe_load((project / "assembly.yml").read_text())
    assert assembly["description"] == description


def test_hook_reports_every_problem(render, capfd):
    with pytest.raises(FailedHookException):
        render(APP_APPLIANCE, {"app_name": "App", "port": "http"})

    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith("error: invalid app_name 'App'")
    assert errors[1].startswith("error: invalid port 'http'")


def test_swarm_role_from_replay_checked(render, tmp_path, capfd):
    """A replay file skips cookiecutter's check of choice answers, so the hook checks the role."""
    answers = json.loads((SWARM_NODE / "cookiecutter.json").read_text())
    answers = {key: value for key, value in answers.items() if not key.startswith("_")}
    answers.update(project_name="node-1", hostname="node-1", swarm_role="leader")
    replay = tmp_path / "swarm-node-answers.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))

    with pytest.raises(FailedHookException):
        render(SWARM_NODE, {}, replay=str(replay))

    assert "error: invalid swarm_role 'leader': choose manager or worker" in capfd.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []
