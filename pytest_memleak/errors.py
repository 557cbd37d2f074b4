"""Errors the plugin raises on purpose: each names what was wrong and what is accepted."""

from __future__ import annotations


class MemleakError(Exception):
    """Base class of every error pytest-memleak raises deliberately."""


class ConfigError(MemleakError, ValueError):
    """A setting (ini key, command-line option, marker argument) has a bad value."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"memleak: invalid value for {key}: {value!r}; expected {expected}")


class ReportError(MemleakError):
    """A report or baseline file cannot be read or written."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"memleak: {path}: {reason}")
