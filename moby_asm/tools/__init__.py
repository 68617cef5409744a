"""Run external tools (graphviz, linuxkit, qemu, skopeo) with one helper that logs and reports."""

from moby_asm.tools.command import ToolFailed, ToolMissing, run_tool

__all__ = ["ToolFailed", "ToolMissing", "run_tool"]
