"""Named choices of one family (filters, observation products, downscaling methods, dielectric models...).

Every family that a namelist key chooses from is a :class:`Registry`: the implementations register
under their names in the module that defines them, the namelist takes its allowed values from
``registry.names()`` (never a copied list), and asking for an unknown name raises
:class:`UnknownName`, whose message lists the valid names::

    FILTERS = Registry("filter", {"enkf": StochasticEnKF, "letkf": LETKF})
    FILTERS["letkf"]     # -> LETKF
    FILTERS["kalman"]    # UnknownName: unknown filter 'kalman'; valid: enkf, letkf
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError, ValueError):
    """A name that is not registered; the message lists the valid names.

    A KeyError, so that ``name in registry`` works, and a ValueError, because it is bad input.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """Read-only mapping name -> implementation of one ``family``, in registration order."""

    def __init__(self, family: str, entries: Mapping[str, T]):
        self.family = family
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"unknown {self.family} {name!r}; valid: {', '.join(self._entries)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, *extra: str) -> tuple[str, ...]:
        """The registered names, after ``extra`` ones (e.g. "none" for a namelist choice that turns it off)."""
        return (*extra, *self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}: {', '.join(self._entries)})"
