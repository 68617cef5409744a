"""Turn constraint origins into FILE:LINE:COLUMN by reopening the declaring file.

Positions are only needed to explain a failure or a selection, so files are parsed
again on demand instead of keeping every node tree in memory while solving.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from moby_asm.documents import Document, InvalidDocuments, load_document
from moby_asm.resolve.provider import Origin


def locate(origin: Origin) -> str:
    """Return FILE:LINE:COLUMN of an origin, or FILE alone when the file cannot be read."""
    document = _document(origin.path)
    if document is None:
        return origin.path
    line, column = document.position(origin.loc)
    return f"{origin.path}:{line}:{column}"


def position(origin: Origin) -> tuple[int, int]:
    """Return (line, column) of an origin; (1, 1) when the file cannot be read."""
    document = _document(origin.path)
    return (1, 1) if document is None else document.position(origin.loc)


@lru_cache(maxsize=256)
def _document(path: str) -> Document | None:
    try:
        return load_document(Path(path))
    except InvalidDocuments:
        return None
