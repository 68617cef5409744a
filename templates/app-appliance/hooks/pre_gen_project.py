"""Check the app-appliance answers before cookiecutter writes any file.

Every problem is printed at once and the script exits with code 1; cookiecutter then
stops and removes the project folder.
"""

import json
import sys

from moby_asm.templates.answers import report_problems

# Cookiecutter replaces the string below with every answer as JSON before it runs this
# script. tojson escapes the quotes inside values, so the JSON never contains three
# quotes in a row and cannot end the string early.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
KINDS = {"project_name": "name", "app_name": "name", "hostname": "hostname", "port": "port",
         "base_image": "image", "kernel_range": "range"}
# Components and capabilities that the rendered assembly needs from the shipped catalog.
# A project component with one of these names would replace the shipped component, or
# be tried first as the provider of the capability.
REQUIRED_NAMES = ("kernel", "init", "runc", "oci-runtime", "containerd", "ca-certificates", "dhcpcd", "hostname")


def reserved_name() -> list[str]:
    if ANSWERS["app_name"] not in REQUIRED_NAMES:
        return []
    return [f"invalid app_name {ANSWERS['app_name']!r}: the appliance already requires the shipped component or "
            f"capability of that name, so choose a name other than {', '.join(REQUIRED_NAMES)}"]


if __name__ == "__main__":
    sys.exit(report_problems(ANSWERS, KINDS, extra=reserved_name()))
