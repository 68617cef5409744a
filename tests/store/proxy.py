"""An HTTP proxy on 127.0.0.1 in front of a test registry that records requests and injects faults.

Tests use it to count the requests a pull sends, to respond with 503 or 429 a given
number of times, to cut a response short, and to change a response body. It can also
require bearer tokens the way Docker Hub does: a 401 with `WWW-Authenticate: Bearer
realm=...`, then a token endpoint that checks basic credentials and issues a token valid
for one repository scope.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_FORWARDED_HEADERS = ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version", "WWW-Authenticate")

BodyRewrite = Callable[[str, bytes], bytes]
"""Called with the request path and the upstream body; returns the body to send."""


class RegistryProxy:
    """Forwards GET and HEAD requests to `upstream` (http://HOST:PORT) and records (method, path)."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str]] = []
        self.rewrite: BodyRewrite | None = None
        self.bearer_credentials: tuple[str, str] | None = None
        self.issued_tokens: list[str] = []
        self._failures: list[tuple[int | None, dict[str, str], str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self, count: int, status: int, headers: dict[str, str] | None = None, path_contains: str = ""
    ) -> None:
        """Respond with `status`, not forwarding, to the next `count` requests with `path_contains` in the path."""
        with self._lock:
            self._failures.extend([(status, headers or {}, path_contains)] * count)

    def truncate_next(self, count: int, path_contains: str = "") -> None:
        """Send only half of the body of the next `count` matching responses, then close the connection."""
        with self._lock:
            self._failures.extend([(None, {}, path_contains)] * count)

    def require_bearer(self, user: str, password: str) -> None:
        """Require a bearer token from /token, which is issued only for these basic credentials."""
        self.bearer_credentials = (user, password)

    def paths(self, kind: str) -> list[str]:
        """Return the recorded paths that contain `/kind/`, such as "blobs" or "manifests"."""
        with self._lock:
            return [path for _, path in self.requests if f"/{kind}/" in path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, method: str, path: str) -> tuple[int | None, dict[str, str]] | None:
        """Record a request and return the failure to respond with: (status, headers), or (None, {}) to truncate."""
        with self._lock:
            self.requests.append((method, path))
            for position, (status, headers, fragment) in enumerate(self._failures):
                if fragment in path:
                    del self._failures[position]
                    return status, headers
            return None


def _handler_for(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def log_message(self, format: str, *args) -> None:
            pass

        def _handle(self, method: str) -> None:
            if self.path.startswith("/token"):
                self._issue_token()
                return
            failure = proxy._record(method, self.path)
            if failure is not None and failure[0] is not None:
                self._reply(failure[0], b"", failure[1])
            elif proxy.bearer_credentials and not self._has_token():
                self._challenge()
            else:
                self._forward(method, truncate=failure is not None)

        def _forward(self, method: str, truncate: bool = False) -> None:
            headers = {"Accept": self.headers.get("Accept", "*/*")}
            request = urllib.request.Request(proxy.upstream + self.path, method=method, headers=headers)
            try:
                with _DIRECT.open(request, timeout=30) as response:
                    status, body, upstream_headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, body, upstream_headers = error.code, error.read(), error.headers
            if proxy.rewrite is not None and status == 200:
                body = proxy.rewrite(self.path, body)
            forwarded = {name: upstream_headers[name] for name in _FORWARDED_HEADERS if upstream_headers.get(name)}
            self._reply(status, b"" if method == "HEAD" else body, forwarded, truncate=truncate)

        def _scope(self) -> str:
            repository = self.path.removeprefix("/v2/").rsplit("/", 2)[0]
            return f"repository:{repository}:pull"

        def _has_token(self) -> bool:
            return self.headers.get("Authorization", "") == f"Bearer token-for-{self._scope()}"

        def _challenge(self) -> None:
            realm = f"http://{proxy.host}/token"
            value = f'Bearer realm="{realm}",service="test-registry",scope="{self._scope()}"'
            self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": value})

        def _issue_token(self) -> None:
            user, password = proxy.bearer_credentials or ("", "")
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._reply(401, b'{"details":"invalid credentials"}', {})
                return
            scope = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("scope", [""])[0]
            token = f"token-for-{scope}"
            proxy.issued_tokens.append(token)
            self._reply(200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})

        def _reply(self, status: int, body: bytes, headers: dict[str, str], truncate: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if truncate:
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
            else:
                self.wfile.write(body)

    return Handler
