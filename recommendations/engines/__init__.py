"""Numpy-only CF, CB and hybrid scoring over bundle arrays; knows no Django."""

from .base import Engine
from .cb import CBEngine
from .cf import CFEngine
from .exceptions import EngineError, InvalidArrays, UnknownCustomer, UnknownItem
from .hybrid import HybridEngine
from .ids import IdIndex
from .results import POPULAR, Recommendations

__all__ = [
    "POPULAR",
    "CBEngine",
    "CFEngine",
    "Engine",
    "EngineError",
    "HybridEngine",
    "IdIndex",
    "InvalidArrays",
    "Recommendations",
    "UnknownCustomer",
    "UnknownItem",
]
