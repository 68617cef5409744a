"""`moby-asm new`: projects from shipped, folder and git templates, contained, trusted or not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moby_asm.shipped import shipped_folder


def write_template(root: Path, files: dict[str, str], questions: dict | None = None) -> Path:
    """Write a cookiecutter template whose project folder is {{cookiecutter.project_name}}."""
    root.mkdir(parents=True)
    (root / "cookiecutter.json").write_text(json.dumps(questions or {"project_name": "demo"}))
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def hook_template(root: Path, hook: str, body: str) -> Path:
    return write_template(root, {"{{cookiecutter.project_name}}/assembly.yml": ASSEMBLY,
                                 f"hooks/{hook}.py": f"import pathlib, sys, time\n{body}\n"})


ASSEMBLY = "name: {{cookiecutter.project_name}}\nrequires: [kernel, init]\n"


def git_repository(template: Path, folder: Path) -> str:
    """Commit `template` into a new git repository and return its file:// URL."""
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["cp", "-r", f"{template}/.", str(folder)], check=True)
    identity = ["-c", "user.name=test", "-c", "user.email=test@127.0.0.1"]
    subprocess.run(["git", "-C", str(folder), "add", "-A"], check=True)
    subprocess.run(["git", *identity, "-C", str(folder), "commit", "-q", "-m", "template"], check=True)
    return f"file://{folder}"


def test_default_template_makes_a_valid_project(cli, tmp_path):
    result = cli("new", "--no-input", "-x", "project_name=edge-1", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    project = tmp_path / "edge-1"
    assert report["project"] == str(project)
    assert report["template"] == "minimal-node"
    assert report["digest"].startswith("sha256:")
    assert cli("validate", project, cwd=tmp_path).returncode == 0
    record = json.loads((project / ".moby-asm" / "template.json").read_text())
    assert record["answers"]["project_name"] == "edge-1"
    assert record["digest"] == report["digest"]
    assert (project / ".moby-asm" / "template-base" / "assembly.yml").read_bytes() == \
        (project / "assembly.yml").read_bytes()


def test_output_folder_is_the_project(cli, tmp_path):
    result = cli("new", "minimal-node", "--no-input", "-o", tmp_path / "here", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "here" / "assembly.yml").is_file()


def test_existing_folder_is_kept_unless_forced(cli, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")

    refused = cli("new", "--no-input", "-o", target, cwd=tmp_path)
    forced = cli("new", "--no-input", "-o", target, "--force", cwd=tmp_path)

    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert not (target / "mine.txt").exists()
    assert (target / "assembly.yml").is_file()


def test_unknown_answer_and_template_exit_2(cli, tmp_path):
    unknown = cli("new", "--no-input", "-x", "colour=blue", cwd=tmp_path)
    missing = cli("new", "no-such-template", "--no-input", cwd=tmp_path)
    malformed = cli("new", "--no-input", "-x", "novalue", cwd=tmp_path)

    assert unknown.returncode == 2
    assert "asks no question 'colour'" in unknown.stderr
    assert missing.returncode == 2
    assert "minimal-node" in missing.stderr
    assert malformed.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_answer_that_leaves_the_folder_is_rejected(cli, tmp_path):
    work = tmp_path / "work"
    work.mkdir()

    result = cli("new", "--no-input", "-x", "project_name=../escaped", cwd=work)

    assert result.returncode == 2
    assert "not a plain file or folder name inside the project" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["work"]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("link", ["/etc/passwd", "../../outside"])
def test_links_out_of_the_template_are_rejected(cli, tmp_path, link):
    template = write_template(tmp_path / "template", {"{{cookiecutter.project_name}}/assembly.yml": ASSEMBLY})
    (template / "{{cookiecutter.project_name}}" / "secret").symlink_to(link)

    result = cli("new", template, "--no-input", cwd=tmp_path)

    assert result.returncode == 2
    assert "links to" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_untrusted_git_template_skips_hooks(cli, tmp_path):
    template = hook_template(tmp_path / "template", "post_gen_project", "pathlib.Path('hook-ran').write_text('yes')")
    url = git_repository(template, tmp_path / "repository")

    skipped = cli("new", url, "--no-input", "-o", tmp_path / "skipped", cwd=tmp_path)
    trusted = cli("new", url, "--no-input", "-o", tmp_path / "trusted", "--trust", cwd=tmp_path)

    assert skipped.returncode == 0, skipped.stderr
    assert "hooks/post_gen_project.py" in skipped.stderr
    assert not (tmp_path / "skipped" / "hook-ran").exists()
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "trusted" / "hook-ran").read_text() == "yes"
    record = json.loads((tmp_path / "trusted" / ".moby-asm" / "template.json").read_text())
    assert record["kind"] == "git"
    assert record["digest"].startswith("git:")


def test_trust_list_in_user_config_runs_hooks(cli, tmp_path):
    template = hook_template(tmp_path / "template", "post_gen_project", "pathlib.Path('hook-ran').write_text('yes')")
    url = git_repository(template, tmp_path / "repository")
    config = tmp_path / "config.yml"
    config.write_text(f"trusted_templates:\n  - file://{tmp_path}/\n")

    result = cli("new", url, "--no-input", "-o", tmp_path / "project", cwd=tmp_path,
                 env={"MOBY_ASM_CONFIG": str(config)})

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "project" / "hook-ran").exists()


def test_failing_hook_writes_nothing(cli, tmp_path):
    template = hook_template(tmp_path / "template", "pre_gen_project", "sys.exit('the name is not allowed')")
    work = tmp_path / "work"
    work.mkdir()

    result = cli("new", template, "--no-input", cwd=work)

    assert result.returncode == 2
    assert "the name is not allowed" in result.stderr
    assert "a hook of" in result.stderr
    assert list(work.iterdir()) == []


def test_untrusted_jinja_extension_is_rejected(cli, tmp_path):
    template = write_template(tmp_path / "template", {"{{cookiecutter.project_name}}/assembly.yml": ASSEMBLY},
                              {"project_name": "demo", "_extensions": ["local_extension.Evil"]})
    url = git_repository(template, tmp_path / "repository")

    result = cli("new", url, "--no-input", cwd=tmp_path)

    assert result.returncode == 2
    assert "local_extension.Evil" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_interrupted_new_leaves_no_project(tmp_path):
    started = tmp_path / "hook-started"
    template = hook_template(tmp_path / "template", "post_gen_project",
                             f"pathlib.Path({str(started)!r}).write_text('1')\ntime.sleep(60)")
    work = tmp_path / "work"
    work.mkdir()
    environment = {**os.environ, "NO_COLOR": "1"}
    running = subprocess.Popen([sys.executable, "-m", "moby_asm", "new", str(template), "--no-input"], cwd=work,
                               env=environment, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline, "the hook did not start"
            time.sleep(0.1)
        # Ctrl-C in a terminal signals the whole foreground process group, the hook included.
        os.killpg(running.pid, signal.SIGINT)
        running.communicate(timeout=30)
    finally:
        running.kill()

    assert running.returncode != 0
    assert list(work.iterdir()) == []


def test_shipped_templates_are_listed_in_the_error(cli, tmp_path):
    result = cli("new", "nope", "--no-input", cwd=tmp_path)

    for name in sorted(path.parent.name for path in shipped_folder("templates").glob("*/cookiecutter.json")):
        assert name in result.stderr


@pytest.mark.parametrize("answer", ["/tmp/elsewhere", "a/../../b", ".."])
def test_path_in_answer_rejected(cli, tmp_path, answer):
    template = write_template(tmp_path / "template", {"{{cookiecutter.project_name}}/{{cookiecutter.f}}/a.txt": "x"},
                              {"project_name": "demo", "f": "data"})
    work = tmp_path / "work"
    work.mkdir()

    result = cli("new", template, "--no-input", "-x", f"f={answer}", cwd=work)

    assert result.returncode == 2, result.stderr
    assert "not a plain file or folder name" in result.stderr
    assert list(work.iterdir()) == []
    assert not Path("/tmp/elsewhere").exists()


def test_untrusted_template_cannot_reach_python(cli, tmp_path):
    marker = tmp_path / "escaped"
    payload = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    template = write_template(tmp_path / "template", {"{{cookiecutter.project_name}}/assembly.yml": payload})
    url = git_repository(template, tmp_path / "repository")

    result = cli("new", url, "--no-input", cwd=tmp_path)

    assert result.returncode == 2
    assert "cannot be rendered" in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "demo").exists()


def test_rendered_project_must_validate(cli, tmp_path):
    # From git the template is untrusted, so its own answer checks do not run.
    url = git_repository(shipped_folder("templates") / "minimal-node", tmp_path / "repository")
    work = tmp_path / "work"
    work.mkdir()

    result = cli("new", url, "--no-input", "-x", "kernel_range=not a range", cwd=work)

    assert result.returncode == 2
    assert "the rendered project is invalid" in result.stderr
    assert f"{work}/my-node/assembly.yml" in result.stderr
    assert list(work.iterdir()) == []


def test_pre_prompt_hook_of_a_trusted_template_runs(cli, tmp_path):
    template = hook_template(tmp_path / "template", "pre_prompt",
                             "import json\npathlib.Path('cookiecutter.json').write_text(json.dumps("
                             "{'project_name': 'from-hook'}))")

    result = cli("new", template, "--no-input", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-hook" / "assembly.yml").is_file()


@pytest.mark.parametrize(("entry", "trusted"), [
    ("file:///srv/templates/", True),
    ("file:///srv/templates", True),
    ("file:///srv/templ", False),
    ("file:///srv/templates/edge", True),
    ("file:///srv/templates/ed", False),
])
def test_trust_list_entries_match_whole_parts(tmp_path, monkeypatch, entry, trusted):
    from moby_asm.templates.sources import is_trusted

    config = tmp_path / "config.yml"
    config.write_text(f"trusted_templates: [{entry!r}]\n")
    monkeypatch.setenv("MOBY_ASM_CONFIG", str(config))

    assert is_trusted("file:///srv/templates/edge#v2") is trusted
