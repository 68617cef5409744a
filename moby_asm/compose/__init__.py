"""Compose: turn a resolved selection into the inputs builders take."""

from moby_asm.compose.composition import Composition, compose, write_composition

__all__ = ["Composition", "compose", "write_composition"]
