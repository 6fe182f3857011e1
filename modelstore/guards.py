"""Rules other apps add to activation: each may refuse to change which version a kind serves.

The registry knows nothing of the apps built on it (they import it, never the other way), yet
some of them hold state that an activation would make untrue: a running experiment calls the
active version its control. Such an app registers a guard in its ``AppConfig.ready``; every
activation and rollback (``version_activate``) calls the guards inside its transaction, after
it has locked the kind's versions, so a guard's check and the activation see the same state.
A guard refuses by raising a ``RegistryError`` (every door maps those), else returns None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .models import ModelVersion


class ActivationGuard(Protocol):
    """Refuse (raise a ``RegistryError``) to make ``version`` the active version of ``kind``."""

    def __call__(self, *, kind: str, version: ModelVersion) -> None: ...


_guards: list[ActivationGuard] = []


def register_activation_guard(guard: ActivationGuard) -> None:
    """Have every activation call ``guard`` first; registering the same guard twice adds it once."""
    if guard not in _guards:
        _guards.append(guard)


def check_activation(*, kind: str, version: ModelVersion) -> None:
    """Call every registered guard; the first that refuses raises its error."""
    for guard in tuple(_guards):
        guard(kind=kind, version=version)
