"""moby-asm composes custom container platforms from versioned components."""

__version__ = "0.1.0"
