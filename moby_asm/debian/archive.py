"""Fetch and verify a Debian archive's Release files, Packages indexes and packages.

Trust flows from the archive keyring: the Release file's signature is checked first, the
Packages index against the SHA-256 the Release lists, and each .deb against the SHA-256
its index (or the lock) lists. Only verified bytes enter the content store, where blobs
are named by their SHA-256. The last verified Release of each mirror and suite is kept
too, so that `--offline` can resolve from the store alone. Its signature is checked
again on every use.
"""

from __future__ import annotations

import hashlib
import lzma
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moby_asm.debian.errors import ArchiveError, BadSignature, HashMismatch, NotCached
from moby_asm.debian.index import PackageIndex
from moby_asm.debian.mirrors import Mirror
from moby_asm.debian.signature import verify_release
from moby_asm.fileio import atomic_write_bytes
from moby_asm.store.errors import DigestMismatch

TIMEOUT_SECONDS = 30
"""Seconds a mirror may take to connect, or between two pieces of a response."""
RELEASE_LIMIT = 32 << 20
"""Bytes a Release file may have; Debian's are well under 1 MiB."""
RELEASE_EXPECTED = 1 << 20
"""Bytes a Release file is expected to have, for its download deadline."""
MIN_RATE = 64 << 10
"""Bytes per second below which a download counts as stalled, after a grace of TIMEOUT_SECONDS."""
_DECOMPRESS = {".xz": lzma.decompress, ".gz": lambda data: zlib.decompress(data, 47), "": lambda data: data}


@dataclass(frozen=True)
class Release:
    """A verified Release file: where it came from and the SHA-256 and size of each index it lists."""

    mirror: Mirror
    suite: str
    by_hash: bool
    files: dict[str, tuple[str, int]]


class Archive:
    """Reads the configured mirrors through the content store; `offline` allows the store alone."""

    def __init__(self, store, mirrors: list[Mirror], offline: bool = False):
        self.store = store
        self.mirrors = mirrors
        self.offline = offline
        self._session = None
        self._indexes: dict[tuple, PackageIndex] = {}

    def index(self, mirrors: list[Mirror], suite: str, components: list[str], architecture: str) -> PackageIndex:
        """Return the verified packages of `suite` for `architecture` from every mirror that serves it."""
        key = (tuple(mirrors), suite, tuple(components), architecture)
        if key not in self._indexes:
            index = PackageIndex()
            for mirror in mirrors:
                release = self.release(mirror, suite)
                for component in components:
                    index.add(self._packages(release, f"{component}/binary-{architecture}/Packages"), mirror.uri)
            self._indexes[key] = index
        return self._indexes[key]

    def release(self, mirror: Mirror, suite: str) -> Release:
        """Return the mirror's Release for `suite`, fetched and verified, or from the store when offline."""
        where = f"{mirror.uri}/dists/{suite}/InRelease"
        key = hashlib.sha256(f"{mirror.uri}\0{suite}".encode()).hexdigest()
        pointer = self.store.root / "debian" / "releases" / key
        if self.offline:
            if not pointer.is_file():
                raise NotCached(f"no verified Release of suite {suite!r} from {mirror.uri} is cached, and --offline "
                                "forbids fetching it; run once without --offline")
            signed = pointer.read_bytes()
        else:
            signed = self._get(where, missing_ok=True)
        if signed is None:
            return self._detached_release(mirror, suite, pointer)
        text = verify_release(signed, None, mirror.keyrings, where)
        release = _parse_release(text, mirror, suite, where)
        if not self.offline:
            atomic_write_bytes(pointer, signed)
        return release

    def fetch(self, record: dict[str, Any], mirror_uri: str) -> Path:
        """Return the stored path of a package as the lock or an index records it, fetching it when missing."""
        digest = f"sha256:{record['sha256']}"
        if self._verified(digest):
            return self.store.blob_path(digest)
        url = f"{mirror_uri}/{record['filename']}"
        if self.offline:
            raise NotCached(f"package {record['name']} {record['version']} ({record['filename']}) is not cached, and "
                            "--offline forbids fetching it; build once without --offline")
        data = self._get(url, limit=record["size"])
        return self.store.blob_path(self._store(data, record["sha256"], record["size"], url))

    def _detached_release(self, mirror: Mirror, suite: str, pointer: Path) -> Release:
        where = f"{mirror.uri}/dists/{suite}/Release"
        if self.offline:
            raise NotCached(f"{where} is signed separately and is not cached; run once without --offline")
        text = self._get(where)
        signature = self._get(where + ".gpg", missing_ok=True)
        if signature is None:
            raise BadSignature(f"{where}: the archive is not signed (it has neither InRelease nor Release.gpg), so "
                               "its packages cannot be verified; use a signed mirror")
        verify_release(text, signature, mirror.keyrings, where)
        return _parse_release(text, mirror, suite, where)

    def _packages(self, release: Release, name: str) -> bytes:
        """Return a verified, uncompressed Packages index named in `release`."""
        plain = release.files.get(name)
        if plain is not None and self._verified(f"sha256:{plain[0]}"):
            return self.store.read_blob(f"sha256:{plain[0]}")
        base = f"{release.mirror.uri}/dists/{release.suite}"
        if self.offline:
            raise NotCached(f"{base}/{name} is not cached, and --offline forbids fetching it; run once without "
                            "--offline")
        for suffix in (".xz", ".gz", ""):
            listed = release.files.get(name + suffix)
            if listed is None:
                continue
            folder = name.rpartition("/")[0]
            path = f"{folder}/by-hash/SHA256/{listed[0]}" if release.by_hash else name + suffix
            url = f"{base}/{path}"
            data = _DECOMPRESS[suffix](_checked(self._get(url, limit=listed[1]), listed, url))
            if plain is not None:
                self._store(data, plain[0], plain[1], f"{base}/{name} (from {url})")
            return data
        raise ArchiveError(f"{base}/Release lists no {name}; check the suite, the component and the architecture")

    def _verified(self, digest: str) -> bool:
        """Return whether the store contains the blob intact; a damaged copy is removed, to be fetched again."""
        if not self.store.has_blob(digest):
            return False
        try:
            self.store.verify_blob(digest)
        except DigestMismatch:
            return False
        return True

    def _store(self, data: bytes, sha256: str, size: int, url: str) -> str:
        try:
            return self.store.write_blob(data, f"sha256:{sha256}", size).digest
        except DigestMismatch as error:
            raise HashMismatch(f"{url} does not match the SHA-256 that its signed index lists ({error}); "
                               "it was not kept. The mirror may be corrupt or tampered with") from None

    def _get(self, url: str, missing_ok: bool = False, limit: int = RELEASE_LIMIT) -> bytes | None:
        """Return the file at `url`; raise ArchiveError past `limit` bytes or the download deadline."""
        if url.startswith("file:"):
            path = Path(url.removeprefix("file://").removeprefix("file:"))
            if not path.is_file():
                if missing_ok:
                    return None
                raise ArchiveError(f"{url} does not exist")
            return path.read_bytes()
        import requests

        try:
            with self._http().get(url, timeout=TIMEOUT_SECONDS, stream=True) as response:
                if response.status_code == 404 and missing_ok:
                    return None
                if response.status_code != 200:
                    raise ArchiveError(f"cannot fetch {url}: HTTP {response.status_code}; check the mirror address "
                                       "and that it serves this suite, component and architecture")
                return _read_limited(response, url, limit, RELEASE_EXPECTED if limit == RELEASE_LIMIT else limit)
        except requests.RequestException as error:
            raise ArchiveError(f"cannot fetch {url}: {error.__class__.__name__}: {error}; check the mirror "
                               "address and the network") from error

    def _http(self):
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            self._session = requests.Session()
            self._session.headers["User-Agent"] = "moby-asm"
            retries = HTTPAdapter(max_retries=Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 502, 503, 504)))
            self._session.mount("http://", retries)
            self._session.mount("https://", retries)
        return self._session


def _read_limited(response, url: str, limit: int, expected: int) -> bytes:
    """Return the body of `response`; stop past `limit` bytes, or when it arrives slower than MIN_RATE.

    `read1` returns whatever has arrived, so the deadline is checked even when a server sends
    a byte now and then. A silent server hits the per-read timeout instead.
    """
    import requests
    import urllib3

    deadline = time.monotonic() + TIMEOUT_SECONDS + expected / MIN_RATE
    chunks, size = [], 0
    try:
        while chunk := response.raw.read1(64 << 10, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise HashMismatch(f"{url} is larger than the {limit} bytes expected of it; it was not kept. The "
                                   "mirror may be corrupt or tampered with")
            if time.monotonic() > deadline:
                raise ArchiveError(f"cannot fetch {url}: it arrives slower than {MIN_RATE >> 10} KiB/s; check the "
                                   "mirror and the network")
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise ArchiveError(f"cannot fetch {url}: {error}; check the mirror and the network") from error
    return b"".join(chunks)


def _checked(data: bytes, listed: tuple[str, int], url: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != listed[0] or len(data) != listed[1]:
        raise HashMismatch(f"{url} does not match the SHA-256 that the signed Release lists (expected {listed[0]}, "
                           f"{listed[1]} bytes; got {actual}, {len(data)} bytes); it was not used")
    return data


def _parse_release(text: bytes, mirror: Mirror, suite: str, where: str) -> Release:
    from debian.deb822 import Release as ReleaseFile

    fields = ReleaseFile(text.decode("utf-8", "replace"))
    names = {fields.get("Suite"), fields.get("Codename")}
    if suite not in names:
        raise ArchiveError(f"{where} describes suite {fields.get('Suite')!r} (codename {fields.get('Codename')!r}), "
                           f"not {suite!r}; the mirror serves another release under this name")
    files = {item["name"]: (item["sha256"], int(item["size"])) for item in fields.get("SHA256", ())}
    if not files:
        raise ArchiveError(f"{where} lists no SHA256 hashes; moby-asm needs them to verify the indexes")
    return Release(mirror, suite, fields.get("Acquire-By-Hash", "no") == "yes", files)
