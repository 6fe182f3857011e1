"""Build a version from a training run's artifacts folder, then verify it and maybe activate it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from django.utils import timezone

from ..bundles import CF, LoadedFile, read_artifacts
from ..bundles.layout import FACTORS_DTYPES, FLOAT32, quantised_cf_arrays
from ..exceptions import RegistryError
from ..models import ModelVersion
from .failures import conversion_errors, failing, storage_errors
from .registration import Registered, register_loaded
from .verification import bundle_limits

if TYPE_CHECKING:
    from collections.abc import Iterable
    from os import PathLike

    from django.contrib.auth.models import AbstractBaseUser

    from .completion import Verify


def version_start_build(
    *, kind: str, label: str = "", notes: str = "", user: AbstractBaseUser | None = None
) -> ModelVersion:
    """Create the row of a version that a task is about to build (status ``building``)."""
    if kind not in ModelVersion.Kind.values:
        raise RegistryError(f"kind {kind!r} is not one of {', '.join(ModelVersion.Kind.values)}")
    placeholder = label or f"{kind}-building-{timezone.now():%Y%m%d-%H%M%S-%f}"
    return ModelVersion.objects.create(
        kind=kind, label=placeholder, notes=notes, created_by=user, status=ModelVersion.Status.BUILDING
    )


def version_build(
    *,
    kind: str,
    artifacts_path: str | PathLike[str],
    compress: str | None = None,
    factors_dtype: str = FLOAT32,
    label: str = "",
    notes: str = "",
    user: AbstractBaseUser | None = None,
    version: ModelVersion | None = None,
    verify: Verify = None,
    activate: bool = False,
) -> Registered:
    """Build a bundle from a seed-layout artifacts folder and register it, then verify and activate.

    ``factors_dtype`` stores a CF bundle's user factors as ``"float32"``, ``"float16"`` or
    ``"int8"`` (see ``write_cf_bundle``); a CB bundle ignores it. ``version`` is a row made
    by ``version_start_build``; any failure is recorded on it. ``verify`` and ``activate``
    are as for ``version_register``.
    """
    from .completion import complete  # it queues and activates, which build on this module

    started = time.perf_counter()
    with failing(version):
        if factors_dtype not in FACTORS_DTYPES:
            raise RegistryError(f"factors dtype {factors_dtype!r} is not one of {', '.join(FACTORS_DTYPES)}")
        with storage_errors(), conversion_errors(Path(artifacts_path).name):
            loaded = _stored_as(read_artifacts(artifacts_path, kind, limits=bundle_limits()), factors_dtype)
            result = register_loaded(
                loaded,
                source_path=None,
                uploaded_sha256="",
                label=label or _label_of(version),
                notes=notes,
                user=user,
                compress=compress,
                version=version,
            )
            del loaded  # the converted arrays are stored: free them before verification maps the file
    result = complete(result, verify=verify, activate=activate, user=user)
    return Registered(result.version, result.created, time.perf_counter() - started)


def _stored_as(loaded: LoadedFile, factors_dtype: str) -> LoadedFile:
    """Return a CF folder's arrays with the user factors stored as ``factors_dtype``."""
    if loaded.kind != CF:
        return loaded
    return dataclasses.replace(loaded, arrays=quantised_cf_arrays(loaded.arrays, factors_dtype))


def _label_of(version: ModelVersion | None) -> str:
    if version is None or version.label.startswith(f"{version.kind}-building-"):
        return ""
    return version.label


def version_fail_builds(*, version_ids: Iterable[int | None], error: object) -> int:
    """Mark versions that are still ``building`` as failed with the reason; return how many."""
    return ModelVersion.objects.filter(
        pk__in=[pk for pk in version_ids if pk], status=ModelVersion.Status.BUILDING
    ).update(status=ModelVersion.Status.FAILED, error=str(error), status_changed_at=timezone.now())
