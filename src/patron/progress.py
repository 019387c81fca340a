"""Progress reporting for long work, independent of any UI."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress"]


class Progress(Protocol):
    """Receives the stages and steps of a long-running job."""

    def stage(self, description: str, total: int | None = None) -> None:
        """A new stage starts; ``total`` steps if known."""

    def advance(self, steps: int = 1) -> None:
        """Steps of the current stage are done."""


class NullProgress:
    """Progress that goes nowhere (library default)."""

    def stage(self, description: str, total: int | None = None) -> None:
        return None

    def advance(self, steps: int = 1) -> None:
        return None
