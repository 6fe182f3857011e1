from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from modelstore import selectors, services
from modelstore.bundles import parse_compression, write_artifacts_bundle
from modelstore.bundles.layout import FACTORS_DTYPES, FLOAT32
from modelstore.models import ModelVersion

from ._common import (
    Progress,
    acting_user,
    add_user_option,
    command_errors,
    human_bytes,
    not_applied,
    summary,
)


def factor_storage(version):
    """Return ", int8 customer factors" for a CF version not stored as float32, else ""."""
    stored = (version.metadata or {}).get("factors_dtype", FLOAT32)
    return f", {stored} customer factors" if version.kind == "cf" and stored != FLOAT32 else ""


class Command(BaseCommand):
    help = (
        "Build CF and CB bundles from seed-layout artifact folders and register them; "
        "with --out, only write the bundle file; with --verify alone, re-verify every registered version."
    )

    def add_arguments(self, parser):
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--cf-only", action="store_true", help="Build only the CF bundle.")
        only.add_argument("--cb-only", action="store_true", help="Build only the CB bundle.")
        parser.add_argument(
            "--cf-artifacts", metavar="DIR", help="CF folder (default HYBRIDREC_CF_ARTIFACTS)."
        )
        parser.add_argument(
            "--cb-artifacts", metavar="DIR", help="CB folder (default HYBRIDREC_CB_ARTIFACTS)."
        )
        compression = parser.add_mutually_exclusive_group()
        compression.add_argument(
            "--no-compress", action="store_true", help="Uncompressed, memory-mapped (default)."
        )
        compression.add_argument(
            "--compress", metavar="ALGO[:LEVEL]", help="zlib, gzip, lz4 or xz, level 1..9."
        )
        parser.add_argument(
            "--factors-dtype",
            choices=FACTORS_DTYPES,
            default=FLOAT32,
            help="How the CF bundle stores customer factors: float32 (default), float16 (half the size) "
            "or int8 with a float32 scale per customer (a quarter). Item factors stay float32.",
        )
        parser.add_argument(
            "--label",
            default="",
            help="Label for new versions, with the kind appended (--label w48 gives w48-cf and w48-cb). "
            "Content that is already registered keeps its label.",
        )
        parser.add_argument("--notes", default="")
        parser.add_argument("--activate", action="store_true", help="Activate each version once it is ready.")
        add_user_option(parser)
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="Queue Celery tasks instead."
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Alone (no folder or --cf-only/--cb-only): re-verify every registered version and print "
            "a table. With a build it changes nothing: new bundles are always verified.",
        )
        parser.add_argument(
            "--out",
            metavar="FILE",
            help="Write the bundle file to FILE and register nothing (with both kinds: FILE with -cf and "
            "-cb before its suffix, e.g. model-cf.joblib).",
        )
        self.add_spark_arguments(parser)

    def add_spark_arguments(self, parser):
        parser.add_argument(
            "--from-spark-als",
            metavar="MODEL_DIR",
            help="Build the CF bundle from a saved Spark MLlib ALSModel folder (read with pyarrow, no Spark "
            "needed); the top 50 items of every customer are precomputed, nothing left out.",
        )
        parser.add_argument(
            "--user-index",
            metavar="PATH",
            help="With --from-spark-als: a saved StringIndexerModel or a Parquet of (index, id) naming "
            "Spark's user ids (default: the integer ids are the ids).",
        )
        parser.add_argument(
            "--item-index", metavar="PATH", help="With --from-spark-als: the same for item ids."
        )

    def from_spark_als(self, options):
        """Turn a saved ALSModel into a CF artifacts folder, then build it like any other."""
        import tempfile

        from modelstore.bundles.spark import write_als_artifacts

        if options["run_async"] or options["cb_only"] or options["cb_artifacts"] or options["cf_artifacts"]:
            raise CommandError("--from-spark-als builds one CF bundle now: no --async, --cb-only or folders")
        model_dir = Path(options["from_spark_als"])
        with tempfile.TemporaryDirectory(prefix="spark-als-") as tmp:
            with command_errors():
                folder = write_als_artifacts(
                    model_dir,
                    Path(tmp) / (model_dir.resolve().name or "spark-als"),
                    user_index=options["user_index"],
                    item_index=options["item_index"],
                    limits=services.bundle_limits(),
                )
            options["acting_user"] = acting_user(options["user"]) if options["activate"] else None
            compress = None if options["no_compress"] else options["compress"]
            if options["out"]:
                return self.write_files([("cf", folder)], compress, Path(options["out"]), options)
            label = f"{options['label']}-cf" if options["label"] else ""
            version = self.build("cf", folder, compress, label, options)
        if version.status != ModelVersion.Status.READY:
            raise CommandError(f"cf version {version.pk} failed: {version.error}")

    def handle(self, *args, **options):
        if options["from_spark_als"]:
            with command_errors():
                parse_compression(None if options["no_compress"] else options["compress"])
            return self.from_spark_als(options)
        if options["user_index"] or options["item_index"]:
            raise CommandError("--user-index and --item-index need --from-spark-als")
        building = (
            options["cf_only"] or options["cb_only"] or options["cf_artifacts"] or options["cb_artifacts"]
        )
        if options["verify"] and not building:
            return self.verify_all()
        compress = None if options["no_compress"] else options["compress"]
        with command_errors():
            parse_compression(compress)
        folders = self.folders(options)
        options["acting_user"] = acting_user(options["user"]) if options["activate"] else None
        if options["out"]:
            return self.write_files(folders, compress, Path(options["out"]), options)
        failed = []
        for kind, folder in folders:
            label = f"{options['label']}-{kind}" if options["label"] else ""
            if options["run_async"]:
                self.queue(kind, folder, compress, label, options)
                continue
            version = self.build(kind, folder, compress, label, options)
            if version.status != ModelVersion.Status.READY:
                failed.append(version)
        if failed:
            raise CommandError("; ".join(f"{v.kind} version {v.pk} failed: {v.error}" for v in failed))

    def folders(self, options):
        wanted = ["cf"] if options["cf_only"] else ["cb"] if options["cb_only"] else ["cf", "cb"]
        given = {"cf": options["cf_artifacts"], "cb": options["cb_artifacts"]}
        explicit = [kind for kind in wanted if given[kind]]
        if not options["cf_only"] and not options["cb_only"] and explicit:
            wanted = explicit  # only the folders named on the command line
        defaults = {"cf": settings.HYBRIDREC_CF_ARTIFACTS, "cb": settings.HYBRIDREC_CB_ARTIFACTS}
        folders = []
        for kind in wanted:
            folder = given[kind] or defaults[kind]
            if not folder:
                raise CommandError(
                    f"no {kind.upper()} artifacts folder: pass --{kind}-artifacts DIR or set "
                    f"HYBRIDREC_{kind.upper()}_ARTIFACTS"
                )
            folders.append((kind, folder))
        return folders

    def queue(self, kind, folder, compress, label, options):
        with command_errors():
            version = services.version_queue_build(
                kind=kind,
                artifacts_path=folder,
                compress=compress,
                factors_dtype=options["factors_dtype"],
                label=label,
                notes=options["notes"],
                activate=options["activate"],
                user=options["acting_user"],
            )
        self.stdout.write(f"queued {kind} build of {folder} as version {version.pk}")

    def build(self, kind, folder, compress, label, options):
        progress = Progress(self.stderr._out)
        with command_errors(), progress.stage(f"building and verifying {kind} bundle from {folder}"):
            result = services.version_build(
                kind=kind,
                artifacts_path=folder,
                compress=compress,
                factors_dtype=options["factors_dtype"],
                label=label,
                notes=options["notes"],
                user=options["acting_user"],
                verify=services.INLINE,
                activate=options["activate"],
            )
        version = result.version
        version.refresh_from_db()
        prefix = "built" if result.created else "already registered"
        self.stdout.write(f"{prefix} {summary(version, progress.seconds)}{factor_storage(version)}")
        if not result.created:
            for note in not_applied(version, label=label, compress=compress):
                self.stdout.write(f"  {note}")
        return version

    def write_files(self, folders, compress, out, options):
        """Write each folder's bundle to a file and register nothing."""
        for kind, folder in folders:
            path = out.with_name(f"{out.stem}-{kind}{out.suffix}") if len(folders) > 1 else out
            progress = Progress(self.stderr._out)
            with command_errors():
                with progress.stage(f"writing {kind} bundle from {folder}"):
                    written = write_artifacts_bundle(
                        path,
                        kind=kind,
                        artifacts_path=folder,
                        compress=compress,
                        factors_dtype=options["factors_dtype"],
                    )
            counts = written.metadata["counts"]
            storage = written.metadata.get("factors_dtype")
            self.stdout.write(
                f"wrote {kind} bundle {path}: {human_bytes(written.size_bytes)}, "
                f"{counts['n_items']:,} items, {written.compression or 'uncompressed'}, "
                + (f"{storage} customer factors, " if storage else "")
                + f"sha256 {written.sha256[:12]}…, {progress.seconds:.1f} s (not registered)"
            )

    def verify_all(self):
        versions = list(selectors.version_list().exclude(status=ModelVersion.Status.BUILDING))
        if not versions:
            self.stdout.write("no model versions registered")
            return
        self.stdout.write(f"{'id':>4}  {'kind':4}  {'label':32}  {'status':7}  detail")
        failed = 0
        for version in versions:
            version = services.version_verify(version=version)
            ok = version.status == ModelVersion.Status.READY
            failed += not ok
            detail = "" if ok else version.error
            self.stdout.write(
                f"{version.pk:>4}  {version.kind:4}  {version.label[:32]:32}  "
                f"{'ok' if ok else 'FAILED':7}  {detail}"
            )
        self.stdout.write(f"verified {len(versions)} versions: {len(versions) - failed} ok, {failed} failed")
        if failed:
            raise CommandError(f"{failed} version(s) failed verification")
