"""HTTP requests to one registry endpoint: timeouts, retries with backoff, and authentication.

oras-py provides the HTTP session and the bearer token exchange (`TokenAuth`), used for
Docker Hub and other registries that respond with 401 and `WWW-Authenticate: Bearer
realm=...`. Its own request method (oras 0.2.43) is not used, because it retries every
failure with waits of several seconds and sets no timeout. The retry loop here retries
connection errors, timeouts, HTTP 429 and 5xx with exponential backoff and honours
`Retry-After`. Registries that request HTTP basic auth (`WWW-Authenticate: Basic`, as
distribution's htpasswd backend does) get the credentials directly, because oras-py's
token backend cannot handle that challenge.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter

from moby_asm.registry.credentials import Credentials, HelperFailed, find_credentials, load_docker_config
from moby_asm.registry.errors import CredentialsError, RegistryError, RegistryTimeout, RegistryUnavailable, Unauthorized

logger = logging.getLogger(__name__)

# oras-py logs a failed token request at error level, with advice about its own API. The
# Unauthorized error raised here names the fix, so when the application configures no
# logging, those records must not reach Python's last-resort handler on stderr.
logging.getLogger("oras").addHandler(logging.NullHandler())

MAX_RETRY_AFTER_SECONDS = 30.0
USER_AGENT = "moby-asm"

Result = TypeVar("Result")


class RetryableStatus(Exception):
    """A response whose status (429 or 5xx) means the same request may succeed later."""

    def __init__(self, status: int, retry_after: float | None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}")


class Transport:
    """Requests to the registry API at `endpoint` (host[:port]), over HTTPS unless `plain_http`.

    `credential_host` is the name under which the Docker config stores the credentials
    (the reference domain, or the mirror host). Credentials are looked up only when the
    registry requests authentication. A transport is not safe to share between threads.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        plain_http: bool,
        credential_host: str,
        docker_config: Path,
        retries: int,
        timeout: float,
        backoff: float,
    ):
        import oras.provider

        self.endpoint = endpoint
        self.base_url = f"{'http' if plain_http else 'https'}://{endpoint}/v2/"
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self._credential_host = credential_host
        self._docker_config = docker_config
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._authorization: str | None = None
        self._oras = oras.provider.Registry(hostname=endpoint, insecure=plain_http)
        self._oras.session.headers["User-Agent"] = USER_AGENT
        adapter = _TimeoutAdapter(timeout)
        self._oras.session.mount("http://", adapter)
        self._oras.session.mount("https://", adapter)

    def request(self, method: str, path: str, *, reference: str, headers: dict | None = None,
                body: bytes | None = None) -> requests.Response:
        """Send a request under the retry policy and return the response with its body not yet read."""
        return self.with_retries(
            lambda: self.request_once(method, path, reference=reference, headers=headers, body=body), reference
        )

    def request_once(self, method: str, path: str, *, reference: str, headers: dict | None = None,
                     body: bytes | None = None) -> requests.Response:
        """Send one request, responding to an authentication challenge once.

        Raise Unauthorized for a final 401 or 403 and RetryableStatus for 429 and 5xx.
        Other statuses, 404 included, are returned for the caller to interpret.
        """
        url = self.base_url + path
        response = self._send(method, url, headers, body)
        if response.status_code == 401 and self._authenticate(response, reference):
            response.close()
            response = self._send(method, url, headers, body)
        if response.status_code in (401, 403):
            response.close()
            raise Unauthorized(reference=reference, host=self.endpoint, status=response.status_code, hint=self._hint())
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise RetryableStatus(response.status_code, _retry_after(response))
        return response

    def with_retries(self, attempt: Callable[[], Result], reference: str) -> Result:
        """Call `attempt` until it succeeds or the retries run out; translate the last failure."""
        attempts = self.retries + 1
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except requests.exceptions.SSLError as error:
                reason = f"TLS failed ({error}); if it serves plain HTTP, mark it insecure"
                raise RegistryUnavailable(
                    reference=reference, host=self.endpoint, attempts=number, reason=reason
                ) from error
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                RetryableStatus,
            ) as error:
                if number == attempts:
                    raise self._exhausted(reference, attempts, error) from error
                delay = self._delay(number, error)
                logger.info("retrying %s on %s in %.2f s after: %s", reference, self.endpoint, delay, _describe(error))
                time.sleep(delay)
            except requests.RequestException as error:
                message = f"request to {self.endpoint} for {reference} failed: {error}"
                raise RegistryError(message, reference=reference, host=self.endpoint) from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(self, method: str, url: str, headers: dict | None, body: bytes | None = None) -> requests.Response:
        combined = dict(headers or {})
        if self._authorization:
            combined["Authorization"] = self._authorization
        logger.debug("%s %s", method, url)
        response = self._oras.session.request(method, url, headers=combined, data=body, stream=True,
                                              timeout=self.timeout)
        logger.debug("%s %s -> HTTP %d", method, url, response.status_code)
        return response

    def _authenticate(self, response: requests.Response, reference: str) -> bool:
        """Set the Authorization header for the response's authentication challenge; return whether one was set."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        credentials = self._lookup_credentials(reference)
        if scheme == "basic" and credentials is not None:
            token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
            self._authorization = f"Basic {token}"
            return True
        if scheme == "bearer":
            auth = self._oras.auth
            if credentials is not None:
                auth.set_basic_auth(credentials.username, credentials.password)
            # refresh=True fetches a token for this challenge's scope instead of reusing one for another repository.
            headers, changed = auth.authenticate_request(response, {}, refresh=True)
            if changed:
                self._authorization = headers["Authorization"]
            return bool(changed)
        return False

    def _lookup_credentials(self, reference: str) -> Credentials | None:
        if not self._credentials_loaded:
            config = load_docker_config(self._docker_config)
            try:
                self._credentials = find_credentials(config, self._credential_host)
            except HelperFailed as error:
                raise CredentialsError(
                    reference=reference, host=self._credential_host, helper=error.helper, reason=error.reason
                ) from error
            self._credentials_loaded = True
        return self._credentials

    def _hint(self) -> str:
        if self._credentials is None:
            return (
                f"no credentials for {self._credential_host} in {self._docker_config}; "
                f"run `docker login {self._credential_host}` or check the image name"
            )
        return f"the credentials for {self._credential_host} from {self._docker_config} were rejected or lack access"

    def _delay(self, number: int, error: Exception) -> float:
        delay = self.backoff * 2 ** (number - 1)
        if isinstance(error, RetryableStatus) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay

    def _exhausted(self, reference: str, attempts: int, error: Exception) -> RegistryUnavailable:
        if isinstance(error, requests.Timeout):
            return RegistryTimeout(reference=reference, host=self.endpoint, attempts=attempts, timeout=self.timeout)
        return RegistryUnavailable(reference=reference, host=self.endpoint, attempts=attempts, reason=_describe(error))


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout, so that oras-py's token requests cannot hang."""

    def __init__(self, timeout: float):
        self._timeout = timeout
        super().__init__()

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _describe(error: Exception) -> str:
    """Return the innermost reason of a requests error, without urllib3's connection pool wording."""
    if isinstance(error, RetryableStatus):
        return str(error)
    reason = error.args[0] if error.args else error
    reason = getattr(reason, "reason", reason)
    text = str(reason)
    return text.split(">: ", 1)[-1] if text.startswith("<") else text
