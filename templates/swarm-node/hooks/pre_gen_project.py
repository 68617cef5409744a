"""Check the swarm-node answers before cookiecutter writes any file.

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
KINDS = {"project_name": "name", "description": "line", "hostname": "hostname", "kernel_range": "range",
         "advertise_address": "address", "join_token_file": "optional-path", "manager_address": "optional-endpoint",
         "kernel_cmdline_extras": "line"}

if __name__ == "__main__":
    sys.exit(report_problems(ANSWERS, KINDS, {"swarm_role": ("manager", "worker")}))
