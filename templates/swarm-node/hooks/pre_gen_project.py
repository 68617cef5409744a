"""Check the swarm-node answers before cookiecutter writes any file.

The script prints every problem at once and exits with code 1, and cookiecutter then
stops and removes the project folder.
"""

import ipaddress
import json
import re
import sys

# moby-asm's rule for assembly and component names (NAME_PATTERN in moby_asm/catalog/model.py).
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Every character that an npm semver range may contain: versions with prerelease and
# build parts, x-ranges, comparison operators, hyphen ranges and '||'.
RANGE_PATTERN = re.compile(r"^[0-9A-Za-z.*^~<>=|+ -]+$")
# A host name after RFC 1123: dot-separated labels of 1 to 63 letters, digits and '-'
# that start and end with a letter or digit.
HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_PATTERN = re.compile(rf"^{HOSTNAME_LABEL}(\.{HOSTNAME_LABEL})*$")
HOSTNAME_MAX_LENGTH = 253
# A Linux network interface name: at most 15 bytes (IFNAMSIZ is 16 with the final NUL).
# Linux rejects '/', ':' and whitespace, and this pattern accepts a smaller set.
INTERFACE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# An absolute path of letters, digits and ._@%+,:=- only, so that it stays one plain
# value in a KEY=VALUE file that a shell may source.
PATH_PATTERN = re.compile(r"^(/[A-Za-z0-9._@%+,:=-]+)+$")
ROLES = ("manager", "worker")

# Cookiecutter replaces the string below with every answer as JSON before it runs this
# script. tojson escapes the quotes inside values, so the JSON never contains three
# quotes in a row and cannot end the string early.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def is_hostname(value: str) -> bool:
    return len(value) <= HOSTNAME_MAX_LENGTH and HOSTNAME_PATTERN.fullmatch(value) is not None


def is_advertise_address(value: str) -> bool:
    """Return whether dockerd can take `value` as an IP address or an interface name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return INTERFACE_PATTERN.fullmatch(value) is not None and value not in (".", "..")
    return True


def is_join_token_file(value: str) -> bool:
    if not value:
        return True
    return PATH_PATTERN.fullmatch(value) is not None and ".." not in value.split("/")


def is_one_printable_line(value: str) -> bool:
    return all(character.isprintable() for character in value)


def find_problems(answers: dict[str, str]) -> list[str]:
    """Return one message per invalid answer."""
    problems = []
    if not NAME_PATTERN.fullmatch(answers["project_name"]):
        problems.append(
            f"invalid project_name {answers['project_name']!r}: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if not is_one_printable_line(answers["description"]):
        problems.append(f"invalid description {answers['description']!r}: write it on one line")
    if not is_hostname(answers["hostname"]):
        problems.append(
            f"invalid hostname {answers['hostname']!r}: use labels of letters, digits and '-' separated "
            "by dots, such as node-1 or node-1.example.org"
        )
    if not RANGE_PATTERN.fullmatch(answers["kernel_range"]):
        problems.append(
            f"invalid kernel_range {answers['kernel_range']!r}: write an npm semver range such as ^6.6 or >=6.6 <6.13"
        )
    if answers["swarm_role"] not in ROLES:
        problems.append(f"invalid swarm_role {answers['swarm_role']!r}: choose manager or worker")
    if not is_advertise_address(answers["advertise_address"]):
        problems.append(
            f"invalid advertise_address {answers['advertise_address']!r}: give an IP address such as "
            "192.168.1.10 or a network interface name such as eth0"
        )
    if not is_join_token_file(answers["join_token_file"]):
        problems.append(
            f"invalid join_token_file {answers['join_token_file']!r}: give an absolute path without spaces, "
            "quotes or '..', such as /run/config/swarm/token, or leave it empty"
        )
    if not is_one_printable_line(answers["kernel_cmdline_extras"]):
        problems.append(
            f"invalid kernel_cmdline_extras {answers['kernel_cmdline_extras']!r}: write the arguments on one line"
        )
    return problems


def main() -> int:
    problems = find_problems(ANSWERS)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
