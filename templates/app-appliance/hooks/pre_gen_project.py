"""Check the app-appliance answers before cookiecutter writes any file.

The script prints every problem at once and exits with code 1, and cookiecutter then
stops and removes the project folder.
"""

from __future__ import annotations

import json
import re
import sys

# moby-asm's rule for assembly and component names (NAME_PATTERN in moby_asm/catalog/model.py).
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# moby-asm's rule for image references (IMAGE_PATTERN in moby_asm/catalog/model.py):
# [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST].
IMAGE_PATTERN = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# Every character that an npm semver range may contain: versions with prerelease and
# build parts, x-ranges, comparison operators, hyphen ranges and '||'.
RANGE_PATTERN = re.compile(r"^[0-9A-Za-z.*^~<>=|+ -]+$")
# A host name after RFC 1123: dot-separated labels of 1 to 63 letters, digits and '-'
# that start and end with a letter or digit.
HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_PATTERN = re.compile(rf"^{HOSTNAME_LABEL}(\.{HOSTNAME_LABEL})*$")
HOSTNAME_MAX_LENGTH = 253
PORT_RANGE = range(1, 65536)
# Components and capabilities that the rendered assembly needs from the shipped catalog.
# A project component with one of these names would replace the shipped component, or
# be tried first as the provider of the capability.
REQUIRED_NAMES = ("kernel", "init", "runc", "oci-runtime", "containerd", "ca-certificates", "dhcpcd", "hostname")

# Cookiecutter replaces the string below with every answer as JSON before it runs this
# script. tojson escapes the quotes inside values, so the JSON never contains three
# quotes in a row and cannot end the string early.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def name_problem(key: str, value: str) -> str | None:
    if NAME_PATTERN.fullmatch(value):
        return None
    return f"invalid {key} {value!r}: use lowercase letters, digits and '-', starting and ending with a letter or digit"


def is_hostname(value: str) -> bool:
    return len(value) <= HOSTNAME_MAX_LENGTH and HOSTNAME_PATTERN.fullmatch(value) is not None


def is_port(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) in PORT_RANGE


def find_problems(answers: dict[str, str]) -> list[str]:
    """Return one message per invalid answer."""
    problems = [
        problem
        for problem in (name_problem("project_name", answers["project_name"]),
                        name_problem("app_name", answers["app_name"]))
        if problem
    ]
    if answers["app_name"] in REQUIRED_NAMES:
        problems.append(
            f"invalid app_name {answers['app_name']!r}: the appliance already requires the shipped "
            f"component or capability of that name, so choose a name other than {', '.join(REQUIRED_NAMES)}"
        )
    if not is_hostname(answers["hostname"]):
        problems.append(
            f"invalid hostname {answers['hostname']!r}: use labels of letters, digits and '-' separated "
            "by dots, such as appliance-1 or appliance-1.example.org"
        )
    port = str(answers["port"])
    if not is_port(port):
        problems.append(f"invalid port {port!r}: give an integer from 1 to 65535, such as 8080")
    if not IMAGE_PATTERN.fullmatch(answers["base_image"]):
        problems.append(
            f"invalid base_image {answers['base_image']!r}: give an image reference such as busybox:1.36 "
            "or registry.example.org:5000/team/base:1.0"
        )
    if not RANGE_PATTERN.fullmatch(answers["kernel_range"]):
        problems.append(
            f"invalid kernel_range {answers['kernel_range']!r}: write an npm semver range such as ^6.6 or >=6.6 <6.13"
        )
    return problems


def main() -> int:
    problems = find_problems(ANSWERS)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
