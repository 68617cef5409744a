"""Signing through a registry that serves the OCI 1.1 referrers API adds `subject` to the signature manifest.

The test registry (distribution 2.8) has no referrers API, so a proxy on 127.0.0.1 in
front of it responds to GET /v2/<name>/referrers/<digest> with an empty image index and
forwards every other request.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fixtures_registry
import pytest

from moby_asm.trust.payload import SIGNATURE_ARTIFACT_TYPE, signature_tag
from moby_asm.trust.signatures import sign, verify

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_FORWARDED = ("Content-Type", "Docker-Content-Digest", "Location", "Docker-Distribution-Api-Version")
_REFERRERS_PATH = re.compile(r"/v2/.+/referrers/sha256:[0-9a-f]{64}")
EMPTY_INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}


class ReferrersProxy:
    """Forwards requests to `upstream` (http://HOST:PORT) and serves an empty referrers index itself."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.referrer_requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(proxy: ReferrersProxy):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _handle(self) -> None:
            if self.command == "GET" and _REFERRERS_PATH.fullmatch(self.path):
                proxy.referrer_requests.append(self.path)
                self._respond(200, {"Content-Type": EMPTY_INDEX["mediaType"]}, json.dumps(EMPTY_INDEX).encode())
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {name: self.headers[name] for name in ("Content-Type", "Accept") if self.headers[name]}
            request = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command,
                                             headers=headers)
            try:
                response = _DIRECT.open(request, timeout=10)
            except urllib.error.HTTPError as error:
                response = error
            with response:
                content = response.read()
                forwarded = {name: response.headers[name] for name in _FORWARDED if response.headers[name]}
                status = response.status if hasattr(response, "status") else response.code
            if "Location" in forwarded:
                forwarded["Location"] = forwarded["Location"].replace(proxy.upstream, f"http://{proxy.host}")
            self._respond(status, forwarded, content)

        def _respond(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _handle

    return Handler


@pytest.fixture
def proxy(registry) -> Iterator[ReferrersProxy]:
    running = ReferrersProxy(registry.url)
    yield running
    running.stop()


def test_referrers_registry_gets_subject(registry, proxy, keys):
    fixtures_registry.make_busybox_image(registry.url, "subject/image", "v1")
    digest = fixtures_registry.manifest_digest(registry.url, "subject/image", "v1")
    raw, media_type = fixtures_registry.fetch_manifest(registry.url, "subject/image", "v1")

    signed = sign(f"{proxy.host}/subject/image:v1", keys["alice"].private_key)
    manifest = json.loads(fixtures_registry.fetch_manifest(registry.url, "subject/image", signed.tag)[0])

    assert proxy.referrer_requests == [f"/v2/subject/image/referrers/{digest}"]
    assert signed.tag == signature_tag(digest)
    assert manifest["artifactType"] == SIGNATURE_ARTIFACT_TYPE
    assert manifest["subject"] == {"mediaType": media_type, "digest": digest, "size": len(raw)}
    assert verify(f"{proxy.host}/subject/image:v1", [keys["alice"].public_key]).digest == digest


def test_registry_without_referrers_gets_tag_only(registry, keys):
    fixtures_registry.make_busybox_image(registry.url, "subject/plain", "v1")

    signed = sign(f"{registry.host}/subject/plain:v1", keys["alice"].private_key)
    manifest = json.loads(fixtures_registry.fetch_manifest(registry.url, "subject/plain", signed.tag)[0])

    assert "subject" not in manifest
    assert "artifactType" not in manifest
