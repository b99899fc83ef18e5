"""Helpers the test suites share (importable as ``support.*``: ``tests/`` is on the path)."""
