"""Checks for template answers, shared by the pre_gen_project hooks of the shipped templates.

A hook maps each question to a kind of value and calls `report_problems`, which prints
every invalid answer at once and returns the hook's exit code. Names, ranges and image
references are checked by the same rules as descriptors and assemblies, so a template
cannot accept a value that `moby-asm validate` would then reject. Cookiecutter runs
Python hooks with the interpreter that runs moby-asm, so the hooks can import this
module.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable

# A host name after RFC 1123: dot-separated labels of 1 to 63 letters, digits and '-'
# that start and end with a letter or digit, 253 characters in all.
_HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOSTNAME_LABEL}(\.{_HOSTNAME_LABEL})*")
# A Linux network interface name: at most 15 bytes (IFNAMSIZ is 16 with the final NUL).
_INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
# An absolute path of letters, digits and ._@%+,:=- only, so that it stays one plain
# value in a KEY=VALUE file that a shell may source.
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._@%+,:=-]+)+")


def _name(value: str) -> str | None:
    from moby_asm.catalog.model import NAME_PATTERN

    if NAME_PATTERN.fullmatch(value):
        return None
    return "use lowercase letters, digits and '-', starting and ending with a letter or digit"


def _range(value: str) -> str | None:
    from moby_asm.catalog.model import check_range

    try:
        check_range(value)
    except ValueError:
        return "write an npm semver range such as ^6.6 or >=6.6 <6.13"
    return None


def _image(value: str) -> str | None:
    from moby_asm.catalog.model import IMAGE_PATTERN

    if IMAGE_PATTERN.fullmatch(value):
        return None
    return "give an image reference such as busybox:1.36 or registry.example.org:5000/team/base:1.0"


def _line(value: str) -> str | None:
    return None if all(character.isprintable() for character in value) else "write it on one line"


def _hostname(value: str) -> str | None:
    if len(value) <= 253 and _HOSTNAME.fullmatch(value):
        return None
    return "use labels of letters, digits and '-' separated by dots, such as node-1 or node-1.example.org"


def _port(value: str) -> str | None:
    if value.isascii() and value.isdigit() and 0 < int(value) < 65536:
        return None
    return "give an integer from 1 to 65535, such as 8080"


def _address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if _INTERFACE.fullmatch(value) and value not in (".", ".."):
            return None
        return "give an IP address such as 192.168.1.10 or a network interface name such as eth0"
    return None


def _optional_path(value: str) -> str | None:
    if not value or (_PLAIN_PATH.fullmatch(value) and ".." not in value.split("/")):
        return None
    return "give an absolute path without spaces, quotes or '..', such as /run/config/swarm/token, or leave it empty"


def _optional_endpoint(value: str) -> str | None:
    host, separator, port = value.rpartition(":")
    if not value or (separator and (_hostname(host) is None or _address(host) is None) and _port(port) is None):
        return None
    return "give HOST:PORT of a manager, such as 10.0.0.1:2377 or manager-1:2377, or leave it empty"


CHECKS: dict[str, Callable[[str], str | None]] = {
    "name": _name, "range": _range, "image": _image, "line": _line, "hostname": _hostname, "port": _port,
    "address": _address, "optional-path": _optional_path, "optional-endpoint": _optional_endpoint,
}


def find_problems(answers: dict, kinds: dict[str, str], choices: dict[str, tuple[str, ...]] | None = None,
                  ) -> list[str]:
    """Return one message per invalid answer; `kinds` maps a question to a key of CHECKS."""
    problems = []
    for key, kind in kinds.items():
        value = str(answers.get(key, ""))
        problem = CHECKS[kind](value)
        if problem:
            problems.append(f"invalid {key} {value!r}: {problem}")
    for key, allowed in (choices or {}).items():
        if answers.get(key) not in allowed:
            problems.append(f"invalid {key} {answers.get(key)!r}: choose {' or '.join(allowed)}")
    return problems


def report_problems(answers: dict, kinds: dict[str, str], choices: dict[str, tuple[str, ...]] | None = None,
                    extra: list[str] | None = None) -> int:
    """Print every problem to standard error and return the hook's exit code: 1 when there is any."""
    problems = find_problems(answers, kinds, choices) + list(extra or [])
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0
