"""YAML documents with source positions, and strict validation against models.

Every project file (component descriptors, assemblies, locks) goes through
`load_document`, which keeps the line and column of each node, and through
`validate_document`, which checks it against a pydantic model and reports every
problem in the file at once.
"""

from moby_asm.documents.diagnostics import Diagnostic, InvalidDocuments
from moby_asm.documents.loader import Document, load_document, parse_document
from moby_asm.documents.validate import StrictModel, validate_document

__all__ = [
    "Diagnostic",
    "Document",
    "InvalidDocuments",
    "StrictModel",
    "load_document",
    "parse_document",
    "validate_document",
]
