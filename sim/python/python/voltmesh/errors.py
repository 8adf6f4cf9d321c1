"""Exceptions raised by :mod:`voltmesh`.

Every error a call can raise is a :class:`VoltmeshError`; the message is the one the ``voltmesh``
CLI prints after ``error:`` for the same flags (flag names such as ``--pv-share`` stand for the
keyword arguments ``pv_share=``).
"""

from __future__ import annotations

__all__ = ["VoltmeshError", "ArgumentError", "GridError"]


class VoltmeshError(Exception):
    """Base of every voltmesh error; raised as itself only for an internal failure (a bug)."""


class ArgumentError(VoltmeshError, ValueError):
    """A bad argument: a value out of range, a time outside the profiles, a malformed order."""


class GridError(VoltmeshError):
    """A grid folder that cannot be read (missing, malformed table) or modelled (meshed)."""
