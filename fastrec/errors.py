"""Exceptions the web layer maps to HTTP statuses.

Bad arguments raise ``ValueError`` or ``TypeError``; these classes mark the
mistakes a client of the service can make, so ``api`` can answer them with 4xx.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class FastrecError(Exception):
    """Base class of fastrec's own exceptions."""


class UnknownNodeError(FastrecError, LookupError):
    """Some node ids are not in the graph (HTTP 404).

    Attributes:
        ids: the unknown ids, as given (all of them, not just the few named in
            the message).
    """

    def __init__(self, ids: Sequence[Any], *, what: str = "node ids") -> None:
        self.ids = list(ids)
        super().__init__(
            f"{len(self.ids)} unknown {what}: {format_ids(self.ids)}; "
            "they are not in the graph"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class BundleError(FastrecError):
    """A saved bundle is missing, incomplete, corrupt or of another version."""


def format_ids(ids: Sequence[Any] | np.ndarray, limit: int = 5) -> str:
    """``[1, 'a', 3]`` for a short list, the first ``limit`` and a count otherwise."""
    shown = ", ".join(repr(_plain(i)) for i in list(ids)[:limit])
    more = len(ids) - limit
    return f"[{shown}]" if more <= 0 else f"[{shown}, ... and {more} more]"


def _plain(value: Any) -> Any:
    """numpy scalars print as ``np.int64(3)``; show them as the Python value."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value
