"""Cookiecutter templates: scaffolding projects, publishing and pulling them, and updating projects."""
