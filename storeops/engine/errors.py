"""The error tree of storeops.

Every error the user can fix is a ``StoreopsError`` carrying a ``Location``
(file, 1-based line and column) and an optional hint, so that the CLI can print
one line per problem, ``FILE:LINE:COL: message``, and exit with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a source file, counted the way editors count (1-based)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class StoreopsError(Exception):
    """Root of every error a user can act on."""

    def __init__(
        self, message: str, location: Location | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        if self.location is not None:
            return f"{self.location}: {text}"
        return text

    def sort_key(self) -> tuple:
        """Errors are reported in file order; errors without a place come first."""
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.message)
        return (loc.file, loc.line, loc.col, self.message)


class PackError(StoreopsError):
    """A rule pack is malformed: YAML, schema or cross-reference problem."""


class YamlError(PackError):
    """The YAML text itself is unreadable or breaks a safety limit."""


class ExpressionError(PackError):
    """An expression has a syntax or type error, or breaks a safety bound."""


class EvaluationError(StoreopsError):
    """Evaluation failed at run time, e.g. two rows of a UNIQUE table matched."""


class InputError(StoreopsError):
    """Input data (CSV, Parquet, mapping file) is missing columns or has bad values."""


class TrailError(StoreopsError):
    """The audit trail cannot be opened, written or queried."""


class ErrorList(StoreopsError):
    """Several errors found in one pass; reported together, sorted by location."""

    def __init__(self, errors: Iterable[StoreopsError]) -> None:
        self.errors = tuple(sorted(errors, key=StoreopsError.sort_key))
        super().__init__(f"{len(self.errors)} error(s)")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
