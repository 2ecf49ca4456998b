"""Fixtures shared by the integration tests."""

from tests.integration.sync_stack import stack

__all__ = ["stack"]
