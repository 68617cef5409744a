"""Build an assembly: compose it, fetch its images, and run the builder of each output format."""

from moby_asm.build.runner import BuildOptions, BuildReport, build_project

__all__ = ["BuildOptions", "BuildReport", "build_project"]
