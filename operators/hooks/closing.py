"""Hooks whose clients hold connections: ``with hook:`` (or ``contextlib.closing(hook)``) closes them."""

from __future__ import annotations

from typing import Any, Self


class ClosingHook:
    """Mixin: ``close()`` drops the hook's clients (the next call builds new ones); a ``with`` block
    closes them on exit, whatever happened inside."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
