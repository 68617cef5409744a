"""Fixtures for the builder tests: a folder of test images and the standard kernel, init and busybox."""

from __future__ import annotations

import pytest

from tests.builders.helpers import Images, add_standard_images


@pytest.fixture(scope="session")
def standard_images(tmp_path_factory) -> Images:
    """Return the standard kernel, init and busybox images, made once per test session."""
    store = Images(tmp_path_factory.mktemp("images"))
    add_standard_images(store)
    return store


@pytest.fixture
def images(standard_images: Images) -> Images:
    """Return a copy of the standard images, so that images a test adds stay out of other tests."""
    return standard_images.copy()
