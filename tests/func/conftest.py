"""Fixtures of the end-to-end tests."""

from tests.support.scripted import scripted  # noqa: F401 - a module-scoped fixture, used by name
