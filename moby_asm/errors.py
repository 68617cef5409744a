"""The exception tree of moby-asm.

    MobyAsmError                    root of every error the library raises on purpose
    ├── InputError                  invalid input: a file, a value or a usage (exit 2)
    │   └── documents.InvalidDocuments   every problem found in one or more files
    └── ResolutionError             no consistent selection exists (exit 3)

Each package defines its own subclasses with fields. The CLI maps classes to exit codes
in one place; anything outside this tree is a bug and keeps its traceback.
"""


class MobyAsmError(Exception):
    """Root of the errors that moby-asm raises for the user to read."""


class InputError(MobyAsmError):
    """An input file, value or command-line usage is invalid."""


class ResolutionError(MobyAsmError):
    """The requested components have no consistent selection."""


class Cancelled(MobyAsmError):
    """The user stopped the work (Ctrl-C); whatever was running was stopped and nothing was half written."""
