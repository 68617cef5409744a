"""Registry credentials from the Docker client configuration, the file `docker login` writes.

The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. As the Docker
CLI does, a host listed in `credHelpers` gets its credentials from that helper, otherwise `credsStore` names
the helper for every host, otherwise the base64 `auth` field of `auths` is used. A
helper is the program `docker-credential-NAME`, run as `docker-credential-NAME get`
with the server on standard input; it prints JSON with `Username` and `Secret`.
Docker Hub's credentials are stored under `https://index.docker.io/v1/`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.registry.reference import DOCKER_HUB_ALIASES

logger = logging.getLogger(__name__)

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
HELPER_TIMEOUT_SECONDS = 30
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
"""The message a credential helper prints for a server it has no entry for (docker-credential-helpers protocol)."""
IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or access token) for HTTP basic auth or a token request."""

    username: str
    password: str = field(repr=False)


class HelperFailed(Exception):
    """A credential helper is missing or failed; `helper` is the program, `reason` what went wrong."""

    def __init__(self, helper: str, reason: str):
        self.helper = helper
        self.reason = reason
        super().__init__(f"{helper}: {reason}")


def docker_config_path(explicit: Path | None = None) -> Path:
    """Return the Docker config file: `explicit`, else `$DOCKER_CONFIG/config.json`, else ~/.docker/config.json."""
    if explicit is not None:
        return explicit
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def load_docker_config(path: Path) -> dict:
    """Return the parsed config file, or an empty one when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("ignoring the Docker config %s, which cannot be read: %s", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def find_credentials(config: dict, host: str) -> Credentials | None:
    """Return the credentials for registry `host` (a reference domain or mirror host), or None.

    Raise HelperFailed when the configured helper is missing or fails.
    """
    server = DOCKER_HUB_SERVER if host in DOCKER_HUB_ALIASES else host
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[key] for key in _config_keys(host) if key in helpers), None) or config.get("credsStore")
    if helper:
        return _ask_helper(str(helper), server)
    entry = _auths_entry(config.get("auths") or {}, host)
    return _decode_auth(entry, host) if entry else None


def _config_keys(host: str) -> list[str]:
    return [DOCKER_HUB_SERVER, *sorted(DOCKER_HUB_ALIASES)] if host in DOCKER_HUB_ALIASES else [host]


def _auths_entry(auths: dict, host: str) -> dict | None:
    # Keys may be written as URLs ("https://host/v1/"), so compare by host alone.
    expected_keys = set(_config_keys(host))
    for key, entry in auths.items():
        bare = key.split("://", 1)[-1].split("/", 1)[0]
        if (key in expected_keys or bare in expected_keys) and isinstance(entry, dict):
            return entry
    return None


def _decode_auth(entry: dict, host: str) -> Credentials | None:
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    try:
        username, colon, password = base64.b64decode(entry.get("auth") or "", validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, TypeError):
        logger.warning(
            "ignoring the auths entry for %s in the Docker config: 'auth' is not base64 of user:password", host
        )
        return None
    return Credentials(username, password) if colon else None


def _ask_helper(name: str, server: str) -> Credentials | None:
    program = f"docker-credential-{name}"
    logger.debug("running %s get for %s", program, server)
    try:
        completed = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError as error:
        raise HelperFailed(program, "the program is not installed or not on PATH") from error
    except subprocess.TimeoutExpired as error:
        raise HelperFailed(program, f"timed out after {HELPER_TIMEOUT_SECONDS} s without a response") from error
    output = completed.stdout.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        if NOT_FOUND_MESSAGE in output:
            return None
        detail = completed.stderr.decode("utf-8", "replace").strip() or output
        raise HelperFailed(program, f"exit code {completed.returncode}: {detail}")
    return _parse_helper_output(program, output)


def _parse_helper_output(program: str, output: str) -> Credentials | None:
    try:
        payload = json.loads(output)
        username, secret = str(payload["Username"]), str(payload["Secret"])
    except (ValueError, KeyError, TypeError) as error:
        raise HelperFailed(program, "the output is not JSON with Username and Secret") from error
    if username == IDENTITY_TOKEN_USER:
        # NOTE: an identity token needs the OAuth2 refresh-token grant, which this client does not implement.
        logger.warning("%s returned an identity token, which is not supported; continuing without credentials", program)
        return None
    return Credentials(username, secret)
