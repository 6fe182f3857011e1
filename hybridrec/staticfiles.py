"""Static files storage: hashed, compressed names once collected, plain names before that."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed and compressed storage that never fails a page over a missing manifest.

    Before ``collectstatic`` runs, a page links the plain name (WhiteNoise then serves it from
    the apps' folders) instead of answering 500 for every page that uses a static file.
    """

    manifest_strict = False

    def stored_name(self, name):
        try:
            return super().stored_name(name)
        except ValueError:  # not collected yet
            return name
