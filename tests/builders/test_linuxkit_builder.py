"""The `linuxkit` builder and `stream_tool`, run against a fake `linuxkit` program on PATH.

The real `linuxkit` has no Debian package, so `fake_linuxkit` writes a Python script that
takes the same `build` options and writes the file names that LinuxKit v1.x writes for
each format (src/cmd/linuxkit/moby/build/output.go). Environment variables change what
the fake does:

    FAKE_LINUXKIT_ARGS    file to which each run appends its arguments as a JSON line
    FAKE_LINUXKIT_FAIL    print this message and exit with code 1 before writing anything
    FAKE_LINUXKIT_LINES   number of numbered progress lines to print first
    FAKE_LINUXKIT_SLEEP   seconds a child process sleeps after half of the output is written
    FAKE_LINUXKIT_PIDS    file that receives the pids of the fake and its sleeping child
    FAKE_LINUXKIT_IGNORE_TERM   ignore SIGTERM, in the fake and its child
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from moby_asm.builders.linuxkit import INSTALL_HINT, SCRATCH_PREFIX, LinuxKitBuilder, LinuxKitFailed
from moby_asm.compose.plan import NATIVE_FORMATS
from moby_asm.errors import Cancelled as BuildStopped
from moby_asm.errors import MobyAsmError
from moby_asm.tools import command as command_module
from moby_asm.tools.command import Cancelled, ToolFailed, ToolMissing, stream_tool

OUTPUT_FILES = {
    "iso-bios": ["{name}.iso"],
    "iso-efi": ["{name}-efi.iso"],
    "iso-efi-initrd": ["{name}-efi-initrd.iso"],
    "raw-bios": ["{name}-bios.img"],
    "raw-efi": ["{name}-efi.img"],
    "qcow2-bios": ["{name}.qcow2"],
    "qcow2-efi": ["{name}-efi.qcow2"],
    "vhd": ["{name}.vhd"],
    "dynamic-vhd": ["{name}.vhd"],
    "vmdk": ["{name}.vmdk"],
    "aws": ["{name}.raw"],
    "gcp": ["{name}.img.tar.gz"],
    "kernel+squashfs": ["{name}-kernel", "{name}-squashfs.img", "{name}-cmdline"],
}

FAKE_LINUXKIT = '''#!{python}
import argparse, json, os, signal, subprocess, sys, time

OUTPUT_FILES = {output_files}


def log(message):
    print(message, file=sys.stderr, flush=True)


def content(output_format, name, file_name, config):
    return f"{{output_format}} {{file_name}} of {{name}}\\n".encode() + config


parser = argparse.ArgumentParser(prog="linuxkit")
commands = parser.add_subparsers(dest="command", required=True)
build = commands.add_parser("build")
build.add_argument("--format", action="append", required=True)
build.add_argument("--name", required=True)
build.add_argument("--dir", default=".")
build.add_argument("--docker", action="store_true")
build.add_argument("config", nargs="+")
arguments = parser.parse_args()

if os.environ.get("FAKE_LINUXKIT_ARGS"):
    with open(os.environ["FAKE_LINUXKIT_ARGS"], "a") as handle:
        handle.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_LINUXKIT_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

config = b"".join(open(path, "rb").read() for path in arguments.config)
print("Extract kernel image: fake/kernel:1", flush=True)
log("Add init containers:")
for number in range(int(os.environ.get("FAKE_LINUXKIT_LINES", "0"))):
    log(f"progress {{number}}")
if os.environ.get("FAKE_LINUXKIT_FAIL"):
    log(os.environ["FAKE_LINUXKIT_FAIL"])
    sys.exit(1)
for output_format in arguments.format:
    if output_format not in OUTPUT_FILES:
        log(f"error parsing formats: unknown format type {{output_format}}")
        sys.exit(1)

log("Create outputs:")
for output_format in arguments.format:
    for pattern in OUTPUT_FILES[output_format]:
        file_name = pattern.format(name=arguments.name)
        data = content(output_format, arguments.name, file_name, config)
        path = os.path.join(arguments.dir, file_name)
        log(f"  {{path}}")
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            if os.environ.get("FAKE_LINUXKIT_SLEEP"):
                sleeper = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))",
                                            os.environ["FAKE_LINUXKIT_SLEEP"]])
                with open(os.environ["FAKE_LINUXKIT_PIDS"], "w") as pids:
                    json.dump([os.getpid(), sleeper.pid], pids)
                log("waiting for the image tool")
                sleeper.wait()
            handle.write(data[len(data) // 2 :])
'''


def expected_content(output_format: str, name: str, file_name: str, config: bytes) -> bytes:
    """Return the bytes the fake writes, by the same rule as its `content` function."""
    return f"{output_format} {file_name} of {name}\n".encode() + config


class RecordingReporter:
    """A reporter that keeps every step, and sets `cancel_event` when a step contains `cancel_on`."""

    def __init__(self, cancel_event: threading.Event | None = None, cancel_on: str = ""):
        self.steps: list[str] = []
        self.cancel_event = cancel_event
        self.cancel_on = cancel_on

    def step(self, message: str) -> None:
        self.steps.append(message)
        if self.cancel_event is not None and self.cancel_on and self.cancel_on in message:
            self.cancel_event.set()

    def warning(self, message: str) -> None:
        self.steps.append(f"warning: {message}")

    def progress(self, task: str, done: int, total: int) -> None:
        pass


def is_running(pid: int) -> bool:
    """Return whether `pid` is a live process. A zombie waiting to be reaped counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_stopped(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def fake_bin(tmp_path, monkeypatch) -> Path:
    """Put a folder with the fake `linuxkit` first on PATH and return the folder."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "linuxkit"
    script.write_text(FAKE_LINUXKIT.format(python=sys.executable, output_files=repr(OUTPUT_FILES)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_LINUXKIT_ARGS", str(tmp_path / "args.jsonl"))
    monkeypatch.setenv("FAKE_LINUXKIT_PIDS", str(tmp_path / "pids.json"))
    for name in ("FAKE_LINUXKIT_FAIL", "FAKE_LINUXKIT_LINES", "FAKE_LINUXKIT_SLEEP", "FAKE_LINUXKIT_IGNORE_TERM"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "linuxkit.yml"
    path.write_text("kernel:\n  image: fake/kernel:1\n  cmdline: console=ttyS0\ninit:\n  - fake/init:1\n")
    return path


def recorded_arguments(tmp_path: Path) -> list[list[str]]:
    lines = (tmp_path / "args.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_builder_writes_each_format(fake_bin, config, tmp_path):
    output_dir = tmp_path / "dist"
    formats = ["iso-bios", "iso-efi", "raw-bios", "qcow2-bios", "vhd", "vmdk", "kernel+squashfs"]

    outputs = LinuxKitBuilder().build_config(config, "tiny", formats, output_dir, RecordingReporter())

    expected = [(output_format, pattern.format(name="tiny"))
                for output_format in formats for pattern in sorted(OUTPUT_FILES[output_format])]
    assert sorted((o.format, o.path.name) for o in outputs) == sorted(expected)
    assert sorted(p.name for p in output_dir.iterdir()) == sorted(name for _, name in expected)
    for output in outputs:
        data = expected_content(output.format, "tiny", output.path.name, config.read_bytes())
        assert output.path.read_bytes() == data
        assert output.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert output.size == len(data)


def test_builder_runs_linuxkit_once_per_format(fake_bin, config, tmp_path):
    LinuxKitBuilder().build_config(config, "tiny", ["iso-bios", "raw-bios"], tmp_path / "dist", RecordingReporter())

    runs = recorded_arguments(tmp_path)

    assert len(runs) == 2
    for run, output_format in zip(runs, ["iso-bios", "raw-bios"], strict=True):
        assert run[:5] == ["build", "--format", output_format, "--name", "tiny"]
        assert run[-1] == str(config)
        assert "--docker" not in run
        scratch = Path(run[run.index("--dir") + 1])
        assert scratch.parent == tmp_path / "dist"
        assert scratch.name.startswith(SCRATCH_PREFIX)


def test_builder_passes_docker_flag(fake_bin, config, tmp_path):
    LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], tmp_path / "dist", RecordingReporter(),
                                   use_docker=True)

    (run,) = recorded_arguments(tmp_path)

    assert "--docker" in run
    assert run[-1] == str(config)


def test_builder_streams_lines_in_order(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_LINES", "3")
    reporter = RecordingReporter()

    LinuxKitBuilder().build_config(config, "tiny", ["iso-bios", "raw-efi"], tmp_path / "dist", reporter)

    for output_format, file_name in (("iso-bios", "tiny.iso"), ("raw-efi", "tiny-efi.img")):
        lines = [step for step in reporter.steps if step.startswith(f"{output_format}: ")]
        assert lines[0].startswith(f"{output_format}: linuxkit build --format {output_format} --name tiny")
        assert lines[1:6] == [f"{output_format}: Extract kernel image: fake/kernel:1",
                              f"{output_format}: Add init containers:",
                              f"{output_format}: progress 0",
                              f"{output_format}: progress 1",
                              f"{output_format}: progress 2"]
        assert lines[6] == f"{output_format}: Create outputs:"
        assert lines[7].endswith(f"/{file_name}")
    first_raw_efi = next(i for i, step in enumerate(reporter.steps) if step.startswith("raw-efi: "))
    assert all(step.startswith("iso-bios: ") for step in reporter.steps[:first_raw_efi])


def test_builder_failure_names_format_and_message(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", 'level=fatal msg="error writing outputs: docker is not running"')

    with pytest.raises(LinuxKitFailed) as raised:
        LinuxKitBuilder().build_config(config, "tiny", ["iso-efi"], tmp_path / "dist", RecordingReporter())

    message = str(raised.value)
    assert isinstance(raised.value, MobyAsmError)
    assert message.startswith("linuxkit could not build iso-efi: ")
    assert f"linuxkit build --format iso-efi --name tiny {config} exited with code 1" in message
    assert "error writing outputs: docker is not running" in message
    assert "--dir" not in message


def test_builder_failure_keeps_last_lines(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_LINES", "100")
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", "failed at the end")

    with pytest.raises(LinuxKitFailed) as raised:
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], tmp_path / "dist", RecordingReporter())

    lines = raised.value.output.splitlines()
    assert len(lines) == 40
    assert lines[0] == "progress 61"
    assert lines[-1] == "failed at the end"
    assert "progress 60\n" not in str(raised.value)


def test_builder_failure_keeps_previous_output(fake_bin, config, tmp_path, monkeypatch):
    output_dir = tmp_path / "dist"
    LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], output_dir, RecordingReporter())
    before = (output_dir / "tiny.iso").read_bytes()
    config.write_text(config.read_text() + "onboot: []\n")
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", "image pull failed")

    with pytest.raises(LinuxKitFailed):
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], output_dir, RecordingReporter())

    assert (output_dir / "tiny.iso").read_bytes() == before
    assert sorted(p.name for p in output_dir.iterdir()) == ["tiny.iso"]


def test_builder_rejects_run_without_files(fake_bin, config, tmp_path):
    script = fake_bin / "linuxkit"
    script.write_text(f"#!{sys.executable}\nprint('nothing to do')\n")

    with pytest.raises(LinuxKitFailed) as raised:
        LinuxKitBuilder().build_config(config, "tiny", ["vhd"], tmp_path / "dist", RecordingReporter())

    assert "could not build vhd" in str(raised.value)
    assert "exited with code 0 but wrote no file" in str(raised.value)
    assert list((tmp_path / "dist").iterdir()) == []


def test_builder_cancel_stops_linuxkit(fake_bin, config, tmp_path, monkeypatch):
    output_dir = tmp_path / "dist"
    LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], output_dir, RecordingReporter())
    before = (output_dir / "tiny.iso").read_bytes()
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "60")
    cancel = threading.Event()
    reporter = RecordingReporter(cancel, cancel_on="waiting for the image tool")
    started = time.monotonic()

    with pytest.raises(Cancelled):
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios", "raw-bios"], output_dir, reporter, cancel)

    assert time.monotonic() - started < 5
    assert (output_dir / "tiny.iso").read_bytes() == before
    assert sorted(p.name for p in output_dir.iterdir()) == ["tiny.iso"]
    fake_pid, sleeper_pid = json.loads((tmp_path / "pids.json").read_text())
    assert wait_until_stopped(fake_pid)
    assert wait_until_stopped(sleeper_pid)
    assert len(recorded_arguments(tmp_path)) == 2


def test_builder_cancelled_before_start(fake_bin, config, tmp_path):
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(BuildStopped) as raised:
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], tmp_path / "dist", RecordingReporter(), cancel)

    assert str(raised.value) == "the build was stopped before linuxkit built iso-bios"
    assert not (tmp_path / "args.jsonl").exists()
    assert list((tmp_path / "dist").iterdir()) == []


def test_builder_without_linuxkit(config, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(ToolMissing) as raised:
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], tmp_path / "dist", RecordingReporter())

    message = str(raised.value)
    assert raised.value.hint == INSTALL_HINT
    assert message.startswith("linuxkit is not installed or not on PATH")
    assert "install the linuxkit command" in message
    assert f"the native builder makes {', '.join(NATIVE_FORMATS)}" in message
    assert list((tmp_path / "dist").iterdir()) == []


def test_stream_tool_kills_after_grace(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setattr(command_module, "TERMINATE_GRACE_SECONDS", 0.5)
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "60")
    monkeypatch.setenv("FAKE_LINUXKIT_IGNORE_TERM", "1")
    cancel = threading.Event()
    started = time.monotonic()

    def on_line(line: str) -> None:
        if line == "waiting for the image tool":
            cancel.set()

    with pytest.raises(Cancelled) as raised:
        stream_tool(["linuxkit", "build", "--format", "iso-bios", "--name", "tiny", "--dir", str(tmp_path),
                     str(config)], on_line=on_line, cancel=cancel)

    assert time.monotonic() - started < 5
    assert raised.value.command[:2] == ["linuxkit", "build"]
    fake_pid, sleeper_pid = json.loads((tmp_path / "pids.json").read_text())
    assert wait_until_stopped(fake_pid)
    assert wait_until_stopped(sleeper_pid)


def test_stream_tool_stops_on_interrupt(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "60")

    def on_line(line: str) -> None:
        if line == "waiting for the image tool":
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stream_tool(["linuxkit", "build", "--format", "iso-bios", "--name", "tiny", "--dir", str(tmp_path),
                     str(config)], on_line=on_line)

    assert time.monotonic() - started < 5
    fake_pid, sleeper_pid = json.loads((tmp_path / "pids.json").read_text())
    assert wait_until_stopped(fake_pid)
    assert wait_until_stopped(sleeper_pid)


def test_stream_tool_failure_carries_tail(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_LINES", "10")
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", "boom")
    lines: list[str] = []

    with pytest.raises(ToolFailed) as raised:
        stream_tool(["linuxkit", "build", "--format", "iso-bios", "--name", "tiny", str(config)],
                    on_line=lines.append, tail=3)

    assert raised.value.returncode == 1
    assert raised.value.stderr == "progress 8\nprogress 9\nboom"
    assert lines[0] == "Extract kernel image: fake/kernel:1"
    assert lines[-1] == "boom"
    assert len(lines) == 13


def test_stream_tool_replaces_invalid_utf8(tmp_path):
    script = tmp_path / "bytes"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.buffer.write(b'caf\\xe9\\nnext\\n')\n")
    script.chmod(0o755)
    lines: list[str] = []

    stream_tool([str(script)], on_line=lines.append)

    assert lines == ["caf\ufffd", "next"]


def project_descriptor(name: str, stage: str, image: str, extra: str = "") -> str:
    return (f"name: {name}\nversions:\n  - version: 1.0.0\n    stage: {stage}\n"
            f"    source:\n      image: {image}\n{extra}")


@pytest.fixture
def project(tmp_path) -> Path:
    """A project whose images are never pulled: the linuxkit builder hands the config to linuxkit."""
    folder = tmp_path / "project"
    components = folder / "components"
    components.mkdir(parents=True)
    (components / "test-kernel.yml").write_text(project_descriptor(
        "test-kernel", "kernel", "127.0.0.1:9/test/kernel:1", "    kernel:\n      cmdline: console=ttyS0\n"))
    (components / "test-init.yml").write_text(project_descriptor("test-init", "init", "127.0.0.1:9/test/init:1"))
    (folder / "assembly.yml").write_text("name: tiny\nrequires: [test-kernel, test-init]\noutputs: [iso-bios]\n")
    return folder


def test_cli_builds_iso_with_linuxkit(cli, fake_bin, project, tmp_path):
    result = cli("build", ".", "--builder", "linuxkit", "--format", "iso-bios", "-o", "out", "--json",
                 cwd=project, env={"MOBY_ASM_CONFIG": str(project / "no-config.yml")})

    assert result.returncode == 0, result.stderr
    (output,) = json.loads(result.stdout)["outputs"]
    config = (project / "build" / "linuxkit.yml").read_bytes()
    data = expected_content("iso-bios", "tiny", "tiny.iso", config)
    assert output["format"] == "iso-bios"
    assert output["path"] == str(project / "out" / "tiny.iso")
    assert output["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (project / "out" / "tiny.iso").read_bytes() == data
    assert sorted(p.name for p in (project / "out").iterdir()) == ["tiny.iso"]


def test_cli_without_linuxkit(cli, project, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()

    result = cli("build", ".", "--builder", "linuxkit", "--format", "iso-bios", "-o", "out",
                 cwd=project, env={"MOBY_ASM_CONFIG": str(project / "no-config.yml"), "PATH": str(empty)})

    assert result.returncode == 1
    assert "error: linuxkit is not installed or not on PATH" in result.stderr
    assert f"the native builder makes {', '.join(NATIVE_FORMATS)}" in result.stderr
    assert "Traceback" not in result.stderr


def test_builder_stops_when_reporter_raises(fake_bin, config, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "60")

    class StoppingReporter(RecordingReporter):
        def step(self, message: str) -> None:
            if "waiting for the image tool" in message:
                raise BuildStopped("the build was stopped")
            super().step(message)

    started = time.monotonic()
    with pytest.raises(BuildStopped):
        LinuxKitBuilder().build_config(config, "tiny", ["iso-bios"], tmp_path / "dist", StoppingReporter())

    assert time.monotonic() - started < 5
    assert list((tmp_path / "dist").iterdir()) == []
    fake_pid, sleeper_pid = json.loads((tmp_path / "pids.json").read_text())
    assert wait_until_stopped(fake_pid)
    assert wait_until_stopped(sleeper_pid)
