"""Admin forms: upload a bundle, build from artifact folders, edit a version's label and notes."""

import os
from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .bundles import COMPRESSORS, BundleError, parse_compression
from .bundles.filebudget import refuse_links_outside
from .formatting import human_bytes
from .models import ModelVersion

# What marks a folder as a seed-layout artifacts folder of each kind.
ARTIFACT_MARKERS = {
    ModelVersion.Kind.CF: ("user_factors.npy",),
    ModelVersion.Kind.CB: ("item_embeddings.npy", "item_features.npz"),
}
FOLDER_SEARCH_DEPTH = 4
FOLDER_SEARCH_LIMIT = 500


def too_large_message(file_name, size_bytes=None):
    """Return the message for a file over ``HYBRIDREC_MAX_UPLOAD_BYTES``."""
    limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
    size = f" ({human_bytes(size_bytes)})" if size_bytes is not None else ""
    return (
        f"“{file_name}”{size} is larger than the upload limit of {human_bytes(limit)} "
        f"({limit:,} bytes, HYBRIDREC_MAX_UPLOAD_BYTES). Nothing was stored."
    )


class UploadForm(forms.Form):
    """Upload a bundle file (native or seed layout, plain or compressed).

    The form checks the fields only; the view then calls ``services.version_upload``, which
    reads the file with the allow-list unpickler (a refused file leaves no file and no row),
    and shows what it refused on the form with ``add_refusal``.
    """

    file = forms.FileField(
        label="Bundle file",
        required=False,  # "required" is checked in clean_file, after a too-large refusal
        allow_empty_file=True,
        help_text="A hybridrec bundle or a seed-layout joblib bundle, plain or compressed "
        "(.joblib, .joblib.gz, .joblib.lz4, …).",
    )
    kind = forms.ChoiceField(
        choices=[("", "Detect from the file"), *ModelVersion.Kind.choices],
        required=False,
        help_text="Seed-layout bundles are always collaborative filtering.",
    )
    label = forms.CharField(
        max_length=ModelVersion._meta.get_field("label").max_length,
        required=False,
        help_text="Unique per kind. Leave empty for kind-date-hash.",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, refusals=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusals = refusals or {}
        limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
        self.fields["file"].help_text += f" At most {human_bytes(limit)}."

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if "file" in self.refusals:
            file_name, _ = self.refusals["file"]  # only the bytes up to the limit were seen
            raise ValidationError(too_large_message(file_name), code="too_large")
        if not upload:
            raise ValidationError("Choose a bundle file to upload.", code="required")
        if upload.size > settings.HYBRIDREC_MAX_UPLOAD_BYTES:
            raise ValidationError(too_large_message(upload.name, upload.size), code="too_large")
        if upload.size == 0:
            raise ValidationError(f"“{upload.name}” is empty.", code="empty")
        return upload

    def clean_label(self):
        return self.cleaned_data["label"].strip()

    def add_refusal(self, exc):
        """Show a refused file on the form: a bundle error under the file, a registry rule above."""
        if isinstance(exc, BundleError):
            self.add_error("file", ValidationError(str(exc), code=exc.code))
        else:
            self.add_error(None, ValidationError(str(exc), code=exc.code))


def artifact_roots():
    """Return the resolved folders that artifact folders may be built from."""
    return [Path(root).resolve() for root in settings.HYBRIDREC_ARTIFACT_ROOTS]


def _root_of(path, roots):
    return next((root for root in roots if path.is_relative_to(root)), None)


def resolve_artifacts_folder(value):
    """Return the resolved folder named by ``value``, or raise ``ValidationError``.

    ``value`` is absolute or relative to one of ``HYBRIDREC_ARTIFACT_ROOTS``. The folder,
    after following ``..`` and symlinks, must lie inside a root, and so must every file in
    it: a symlink out of the roots is refused like a path outside them.
    """
    roots = artifact_roots()
    text = str(value).strip()
    if not text:
        raise ValidationError("Name a folder.", code="required")
    if "\x00" in text:
        raise ValidationError("The path holds a NUL character.", code="invalid")
    candidate = Path(text)
    if candidate.is_absolute():
        candidates = [candidate]
    else:
        candidates = [root / candidate for root in roots]
    existing = [path for path in candidates if path.is_dir()]
    for path in existing or candidates:
        resolved = path.resolve()
        root = _root_of(resolved, roots)
        if root is None:
            raise ValidationError(
                f"{text} is outside the artifact folders ({', '.join(str(r) for r in roots)}).",
                code="outside_roots",
            )
        if not resolved.is_dir():
            continue
        for entry in resolved.iterdir():
            if entry.is_symlink() and _root_of(entry.resolve(), roots) is None:
                raise ValidationError(
                    f"{entry.name} in {text} links outside the artifact folders.", code="outside_roots"
                )
        try:  # the reader refuses the same again when the build runs
            refuse_links_outside(resolved)
        except BundleError as exc:
            raise ValidationError(str(exc), code="outside_folder") from None
        return resolved
    raise ValidationError(f"{text} is not a folder under the artifact roots.", code="not_a_folder")


def artifact_folder_choices(kind):
    """Return ``[(resolved path, display name)]`` of the ``kind`` artifacts folders under the roots."""
    markers = ARTIFACT_MARKERS[kind]
    roots = artifact_roots()
    choices = []
    for root in roots:
        if not root.is_dir():
            continue
        for folder, dirnames, filenames in os.walk(root):  # symlinked folders are not entered
            depth = len(Path(folder).relative_to(root).parts)
            if depth >= FOLDER_SEARCH_DEPTH:
                dirnames[:] = []
            dirnames.sort()
            if any(marker in filenames for marker in markers):
                relative = Path(folder).relative_to(root)
                name = str(relative) if len(roots) == 1 else str(root.name / relative)
                if name == ".":
                    name = str(root)
                choices.append((str(Path(folder)), name))
                if len(choices) >= FOLDER_SEARCH_LIMIT:
                    return choices
    return choices


class BuildForm(forms.Form):
    """Build CF and/or CB bundles from seed-layout artifact folders under the artifact roots."""

    cf_folder = forms.ChoiceField(label="CF artifacts folder", required=False)
    cf_path = forms.CharField(
        label="or CF folder path",
        required=False,
        help_text="Relative to an artifact root, or absolute inside one.",
    )
    cb_folder = forms.ChoiceField(label="CB artifacts folder", required=False)
    cb_path = forms.CharField(
        label="or CB folder path",
        required=False,
        help_text="Relative to an artifact root, or absolute inside one.",
    )
    compression = forms.ChoiceField(
        choices=[("none", "None — memory-mapped, fastest to load"), *((c, c) for c in COMPRESSORS)],
        initial="none",
        help_text="Compressed bundles are smaller to ship but are read fully into memory.",
    )
    level = forms.IntegerField(
        min_value=1, max_value=9, initial=3, required=False, help_text="Compression level, 1–9 (default 3)."
    )
    factors_dtype = forms.ChoiceField(
        label="Customer factors",
        choices=[
            ("float32", "float32 — as trained"),
            ("float16", "float16 — half the size"),
            ("int8", "int8 with a scale per customer — a quarter of the size"),
        ],
        initial="float32",
        required=False,
        help_text="How a CF bundle stores customer factors; item factors stay float32. "
        "On Online Retail, NDCG@10 moves by less than 1 % (docs/BENCHMARKS.md).",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    activate = forms.BooleanField(
        label="Activate when ready",
        required=False,
        help_text="Make each new version active as soon as it is built and verified.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in ModelVersion.Kind.values:
            found = artifact_folder_choices(kind)
            empty = "Choose a folder" if found else "None found under the artifact roots"
            self.fields[f"{kind}_folder"].choices = [("", empty), *found]

    def _clean_folder(self, name):
        value = self.cleaned_data.get(name)
        return resolve_artifacts_folder(value) if value else None

    def clean_cf_folder(self):
        return self._clean_folder("cf_folder")

    def clean_cf_path(self):
        return self._clean_folder("cf_path")

    def clean_cb_folder(self):
        return self._clean_folder("cb_folder")

    def clean_cb_path(self):
        return self._clean_folder("cb_path")

    def clean(self):
        cleaned = super().clean()
        folders = {}
        for kind in ModelVersion.Kind.values:
            chosen, typed = cleaned.get(f"{kind}_folder"), cleaned.get(f"{kind}_path")
            if chosen and typed and chosen != typed:
                self.add_error(f"{kind}_path", "Choose a folder from the list or type a path, not both.")
            elif chosen or typed:
                folders[kind] = chosen or typed
        folder_fields = [f"{kind}_{part}" for kind in ModelVersion.Kind.values for part in ("folder", "path")]
        if not folders and not any(name in self.errors for name in folder_fields):
            raise ValidationError("Choose a CF folder, a CB folder, or both.", code="no_folder")
        cleaned["folders"] = folders
        algorithm = cleaned.get("compression")
        if algorithm and algorithm != "none" and "level" not in self.errors:
            spec = f"{algorithm}:{cleaned.get('level') or 3}"
            try:
                parse_compression(spec)
            except ValueError as exc:
                self.add_error("compression", str(exc))
            cleaned["compress"] = spec
        else:
            cleaned["compress"] = None
        cleaned["factors_dtype"] = cleaned.get("factors_dtype") or "float32"
        return cleaned


class ModelVersionForm(forms.ModelForm):
    """Edit what a person may change on a version: its label and notes."""

    class Meta:
        model = ModelVersion
        fields = ["label", "notes"]

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        clash = ModelVersion.objects.filter(kind=self.instance.kind, label=label).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                f"Another {self.instance.kind} version is labelled “{label}”.", code="duplicate_label"
            )
        return label
