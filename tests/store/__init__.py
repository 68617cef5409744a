"""Tests of the content store and the registry client."""
