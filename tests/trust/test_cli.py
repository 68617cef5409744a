"""The key, sign and verify commands: files, exit codes, and no key material or passphrase in any output."""

from __future__ import annotations

import json
import stat

import fixtures_registry

from .conftest import make_key_pair, run_cli

PASSWORD = "correct horse battery staple"


def key_lines(*paths) -> list[str]:
    """Return the base64 body lines of PEM files, which must never appear in command output."""
    lines = []
    for path in paths:
        lines += [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]
    return lines


def assert_no_secrets(result, *key_files) -> None:
    output = result.stdout + result.stderr
    assert "PRIVATE KEY" not in output
    assert PASSWORD not in output
    for line in key_lines(*key_files):
        assert line not in output


def test_generate_writes_key_pair(tmp_path):
    result = run_cli("key", "generate", "--no-passphrase", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["private_key"] == "moby-asm.key"
    assert stat.S_IMODE((tmp_path / "moby-asm.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "moby-asm.pub").stat().st_mode) == 0o644
    assert len(written["key_id"]) == 16
    assert written["encrypted"] is False
    assert_no_secrets(result, tmp_path / "moby-asm.key", tmp_path / "moby-asm.pub")


def test_generate_encrypts_with_password_variable(tmp_path):
    result = run_cli("key", "generate", "--output", tmp_path / "team", cwd=tmp_path,
                     env={"MOBY_ASM_KEY_PASSWORD": PASSWORD})

    assert result.returncode == 0, result.stderr
    assert "key id" in result.stdout
    assert (tmp_path / "team.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert_no_secrets(result, tmp_path / "team.key")


def test_generate_keeps_existing_files(tmp_path):
    first = run_cli("key", "generate", "--no-passphrase", cwd=tmp_path)
    before = (tmp_path / "moby-asm.key").read_bytes()

    second = run_cli("key", "generate", "--no-passphrase", cwd=tmp_path)
    forced = run_cli("key", "generate", "--no-passphrase", "--force", cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 2
    assert "already exists" in second.stderr
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "moby-asm.key").read_bytes() != before


def test_sign_and_verify_image(tmp_path, registry):
    image = fixtures_registry.make_busybox_image(registry.url, "cli/image", "v1")
    run_cli("key", "generate", "--output", "signer", cwd=tmp_path, env={"MOBY_ASM_KEY_PASSWORD": PASSWORD})

    signed = run_cli("sign", image, "--key", "signer.key", "--json", cwd=tmp_path,
                     env={"MOBY_ASM_KEY_PASSWORD": PASSWORD})
    verified = run_cli("verify", image, "--key", "signer.pub", "--json", cwd=tmp_path)

    assert signed.returncode == 0, signed.stderr
    assert verified.returncode == 0, verified.stderr
    digest = fixtures_registry.manifest_digest(registry.url, "cli/image", "v1")
    assert json.loads(signed.stdout)["digest"] == digest
    assert json.loads(verified.stdout)["key_id"] == json.loads(signed.stdout)["key_id"]
    assert_no_secrets(signed, tmp_path / "signer.key")
    assert_no_secrets(verified, tmp_path / "signer.key")


def test_sign_with_wrong_password(tmp_path, registry):
    image = fixtures_registry.make_busybox_image(registry.url, "cli/wrong", "v1")
    run_cli("key", "generate", "--output", "signer", cwd=tmp_path, env={"MOBY_ASM_KEY_PASSWORD": PASSWORD})

    result = run_cli("sign", image, "--key", "signer.key", cwd=tmp_path,
                     env={"MOBY_ASM_KEY_PASSWORD": "not the passphrase"})

    assert result.returncode == 2
    assert "cannot decrypt signer.key" in result.stderr
    assert "not the passphrase" not in result.stderr
    assert_no_secrets(result, tmp_path / "signer.key")


def test_verify_failures_exit_1(tmp_path, registry):
    image = fixtures_registry.make_busybox_image(registry.url, "cli/failures", "v1")
    unsigned = fixtures_registry.make_busybox_image(registry.url, "cli/failures", "v2")
    alice = make_key_pair(tmp_path, "alice")
    bob = make_key_pair(tmp_path, "bob")
    run_cli("sign", image, "--key", alice.private_path, cwd=tmp_path)

    wrong_key = run_cli("verify", image, "--key", bob.public_path, cwd=tmp_path)
    missing = run_cli("verify", unsigned, "--key", alice.public_path, cwd=tmp_path)

    assert wrong_key.returncode == 1
    assert bob.key_id in wrong_key.stderr
    assert "bad signature" in wrong_key.stderr
    assert missing.returncode == 1
    assert "moby-asm sign" in missing.stderr


def test_sign_and_verify_template(tmp_path, registry):
    folder = tmp_path / "template"
    (folder / "{{cookiecutter.project_name}}").mkdir(parents=True)
    (folder / "{{cookiecutter.project_name}}" / "assembly.yml").write_text("name: {{cookiecutter.project_name}}\n")
    (folder / "cookiecutter.json").write_text(json.dumps({"project_name": "demo",
                                                          "_moby_asm": {"version": "1.0.0"}}))
    reference = f"oci://{registry.host}/cli/template:1.0.0"
    alice = make_key_pair(tmp_path, "alice")
    bob = make_key_pair(tmp_path, "bob")

    published = run_cli("publish", "template", folder, reference, "--json", cwd=tmp_path)
    signed = run_cli("sign", reference, "--key", alice.private_path, "--json", cwd=tmp_path)
    verified = run_cli("verify", reference, "--key", bob.public_path, "--key", alice.public_path, "--json",
                       cwd=tmp_path)
    listed = run_cli("template", "list", f"oci://{registry.host}/cli/template", "--json", cwd=tmp_path)

    assert published.returncode == 0, published.stderr
    assert signed.returncode == 0, signed.stderr
    assert verified.returncode == 0, verified.stderr
    assert json.loads(signed.stdout)["digest"] == json.loads(published.stdout)["digest"]
    assert json.loads(verified.stdout)["key_id"] == alice.key_id
    assert [entry["tag"] for entry in json.loads(listed.stdout)] == ["1.0.0"]
