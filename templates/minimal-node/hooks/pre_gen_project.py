"""Check the minimal-node answers before cookiecutter writes any file.

The script prints every problem at once and exits with code 1, and cookiecutter then
stops and removes the project folder.
"""

import json
import re
import sys

# moby-asm's rule for assembly and component names (NAME_PATTERN in moby_asm/catalog/model.py).
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Every character that an npm semver range may contain: versions with prerelease and
# build parts, x-ranges, comparison operators, hyphen ranges and '||'.
RANGE_PATTERN = re.compile(r"^[0-9A-Za-z.*^~<>=|+ -]+$")

# Cookiecutter replaces the string below with every answer as JSON before it runs this
# script. tojson escapes the quotes inside values, so the JSON never contains three
# quotes in a row and cannot end the string early.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def find_problems(answers: dict[str, str]) -> list[str]:
    """Return one message per invalid answer."""
    problems = []
    if not NAME_PATTERN.fullmatch(answers["project_name"]):
        problems.append(
            f"invalid project_name {answers['project_name']!r}: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if not all(character.isprintable() for character in answers["description"]):
        problems.append(f"invalid description {answers['description']!r}: write it on one line")
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
