"""Make tiny .deb files with dpkg-deb, lay them out as a signed Debian archive, and serve it on 127.0.0.1.

The archive has the layout that apt and moby-asm read: `pool/main/*.deb`,
`dists/SUITE/main/binary-ARCH/Packages` with its `.xz` copy, and `dists/SUITE/Release`
listing their SHA-256, clear-signed as `InRelease` by a key made in a private GNUPGHOME.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEB_MTIME = 1_600_000_000
"""Modification time given to every file packed into a .deb, in seconds since the epoch."""

TOOL_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class DebSpec:
    """The control fields and the files of one binary package to build."""

    name: str
    version: str = "1.0"
    files: dict[str, bytes] = field(default_factory=dict)
    depends: str | None = None
    pre_depends: str | None = None
    provides: str | None = None
    essential: bool = False
    postinst: str | None = None
    architecture: str = "amd64"
    hard_links: dict[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}_{self.version.partition(':')[2] or self.version}_{self.architecture}.deb"

    def control_fields(self) -> dict[str, str]:
        """Return the control fields in the order dpkg writes them, leaving out the unset ones."""
        fields = {"Package": self.name, "Version": self.version, "Architecture": self.architecture,
                  "Maintainer": "moby-asm tests <tests@example.invalid>"}
        if self.essential:
            fields["Essential"] = "yes"
        optional = {"Pre-Depends": self.pre_depends, "Depends": self.depends, "Provides": self.provides}
        fields.update({name: value for name, value in optional.items() if value})
        fields["Description"] = f"{self.name} made by the moby-asm tests"
        return fields


def run_tool(arguments: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a tool and raise with its stderr when it fails."""
    result = subprocess.run(arguments, capture_output=True, env={**os.environ, **(env or {})},
                            timeout=TOOL_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(arguments)} failed with exit {result.returncode}: "
                             f"{result.stderr.decode(errors='replace')}")
    return result


def build_deb(spec: DebSpec, folder: Path, mtime: int = DEB_MTIME) -> Path:
    """Build `spec` with `dpkg-deb --build` into `folder` and return the .deb path."""
    root = folder / f"{spec.name}-{spec.version}-root"
    (root / "DEBIAN").mkdir(parents=True)
    control = "".join(f"{name}: {value}\n" for name, value in spec.control_fields().items())
    (root / "DEBIAN" / "control").write_text(control)
    if spec.postinst is not None:
        script = root / "DEBIAN" / "postinst"
        script.write_text(spec.postinst)
        script.chmod(0o755)
    for path, data in spec.files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for path, existing in spec.hard_links.items():
        os.link(root / existing, root / path)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    deb = folder / spec.file_name
    run_tool(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)])
    return deb


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """An ed25519 OpenPGP key in a private GNUPGHOME, and its public key exported as a binary keyring."""

    home: Path
    fingerprint: str
    keyring: Path

    def clearsign(self, source: Path, target: Path) -> None:
        run_tool(["gpg", "--batch", "--yes", "--local-user", self.fingerprint, "--clearsign", "--output",
                  str(target), str(source)], env={"GNUPGHOME": str(self.home)})


def make_signing_key(home: Path, name: str) -> SigningKey:
    """Generate a key without passphrase for `name` in `home` and export its public key to NAME.gpg."""
    home.mkdir(mode=0o700, exist_ok=True)
    environment = {"GNUPGHOME": str(home)}
    user_id = f"{name} <{name}@example.invalid>"
    run_tool(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", user_id, "ed25519", "sign", "never"],
             env=environment)
    listing = run_tool(["gpg", "--batch", "--with-colons", "--list-keys", user_id], env=environment)
    fingerprint = next(line.split(":")[9] for line in listing.stdout.decode().splitlines()
                       if line.startswith("fpr:"))
    keyring = home.parent / f"{name}.gpg"
    run_tool(["gpg", "--batch", "--yes", "--output", str(keyring), "--export", fingerprint], env=environment)
    return SigningKey(home, fingerprint, keyring)


class LocalArchive:
    """A Debian archive in `root`, reachable at `uri`, with one suite and the component `main`."""

    def __init__(self, root: Path, uri: str, suite: str = "bookworm", architecture: str = "amd64"):
        self.root = root
        self.uri = uri
        self.suite = suite
        self.architecture = architecture
        self.debs: dict[str, Path] = {}
        self._paragraphs: list[str] = []

    @property
    def dists(self) -> Path:
        return self.root / "dists" / self.suite

    @property
    def packages_path(self) -> Path:
        return self.dists / "main" / f"binary-{self.architecture}" / "Packages"

    @property
    def release_path(self) -> Path:
        return self.dists / "Release"

    @property
    def inrelease_path(self) -> Path:
        return self.dists / "InRelease"

    def add(self, *specs: DebSpec) -> None:
        """Build each package into the pool and add its paragraph to the Packages index."""
        pool = self.root / "pool" / "main"
        pool.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            deb = build_deb(spec, pool)
            data = deb.read_bytes()
            filename = deb.relative_to(self.root).as_posix()
            fields = {**spec.control_fields(), "Filename": filename, "Size": str(len(data)),
                      "SHA256": sha256_of(data)}
            self._paragraphs.append("".join(f"{name}: {value}\n" for name, value in fields.items()))
            self.debs[spec.name] = deb

    def write_indexes(self, release_suite: str | None = None) -> None:
        """Write Packages, Packages.xz and a Release that lists both, with `release_suite` as Suite when given."""
        self.packages_path.parent.mkdir(parents=True, exist_ok=True)
        self.write_packages("\n".join(self._paragraphs).encode())
        suite = release_suite or self.suite
        lines = ["Origin: moby-asm tests", f"Suite: {suite}", f"Codename: {suite}",
                 f"Architectures: {self.architecture}", "Components: main", "SHA256:"]
        for path in (self.packages_path, self.packages_path.with_suffix(".xz")):
            data = path.read_bytes()
            lines.append(f" {sha256_of(data)} {len(data)} {path.relative_to(self.dists).as_posix()}")
        self.release_path.write_text("\n".join(lines) + "\n")

    def write_packages(self, text: bytes) -> None:
        """Replace Packages and Packages.xz, leaving the Release as it is."""
        self.packages_path.write_bytes(text)
        self.packages_path.with_suffix(".xz").write_bytes(lzma.compress(text))

    def sign(self, key: SigningKey) -> None:
        """Clear-sign the Release into InRelease."""
        key.clearsign(self.release_path, self.inrelease_path)

    def publish(self, key: SigningKey, *specs: DebSpec) -> None:
        """Add `specs`, write the indexes and sign them with `key`."""
        self.add(*specs)
        self.write_indexes()
        self.sign(key)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


class ArchiveServer:
    """An HTTP server on 127.0.0.1 at a free port, serving the files below `root` until `stop`."""

    def __init__(self, root: Path):
        self.root = root
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
