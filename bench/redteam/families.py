"""The hostile file families and the doors each goes through; payloads come from the corpus.

A family is a name and the attempts it makes: ``(door, call)`` pairs, built when the family runs
(so a payload exists only while its family is tried). Bundle files go through the API upload
and the admin upload; artifact folders through the admin Build page and ``bundle_models``;
Spark folders through ``bundle_models --from-spark-als``; training CSVs through the admin
training page and ``train_models``. Every kind of ``tests.security.hostile.corpus`` is one
more bundle family, so entries added to the corpus are tried here without a change.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests import factories
from tests.security import amplifiers, hostile, hostile_readers

from . import doors

# The secret a memory map would leak must be as long as the factors it would become.
SECRET = (b"the server's secret key; " * 80)[:1440]


@dataclass
class Family:
    """A hostile family: its name, and a function of the run's context returning its attempts."""

    name: str
    attempts: Callable[["Context"], list[tuple[str, Callable[[], doors.Answer]]]]


@dataclass
class Context:
    """What attempts need: the stand, an admin session, the per-attempt timeout and a scratch folder."""

    stand: object
    admin: doors.AdminSession
    timeout: float
    scratch: Path

    @property
    def marker(self):
        return self.scratch / "outside" / "marker"

    @property
    def secret(self):
        return self.scratch / "outside" / "secret"


def bundle_doors(ctx, name, data):
    """Return the attempts of one bundle file: the API upload and the admin upload."""
    return [
        ("API upload", partial(doors.api_upload, ctx.stand, name, data, timeout=ctx.timeout)),
        ("admin upload", partial(doors.admin_upload, ctx.stand, ctx.admin, name, data, timeout=ctx.timeout)),
    ]


def folder_doors(ctx, folder):
    """Return the attempts of one CF artifacts folder: the admin Build page and ``bundle_models``."""
    return [
        ("admin build", partial(doors.admin_build, ctx.stand, ctx.admin, folder, timeout=ctx.timeout)),
        (
            "bundle_models",
            partial(
                doors.command,
                ctx.stand,
                "bundle_models",
                ["bundle_models", "--cf-artifacts", folder, "--cf-only"],
                timeout=ctx.timeout,
            ),
        ),
    ]


def spark_doors(ctx, folder):
    """Return the attempt of one saved Spark ALS folder: ``bundle_models --from-spark-als``."""
    args = ["bundle_models", "--from-spark-als", folder]
    return [("bundle_models", partial(doors.command, ctx.stand, "bundle_models", args, timeout=ctx.timeout))]


def csv_doors(ctx, path):
    """Return the attempts of one interactions file: the admin training page and ``train_models``."""
    args = ["train_models", "--interactions", path, "--out", ctx.scratch / f"trained-{path.name}"]
    args += ["--factors", 4, "--iterations", 2]
    return [
        ("admin training", partial(doors.admin_train, ctx.stand, ctx.admin, path, timeout=ctx.timeout)),
        ("train_models", partial(doors.command, ctx.stand, "train_models", args, timeout=ctx.timeout)),
    ]


def _bundles(*builders):
    def attempts(ctx):
        return [attempt for name, build in builders for attempt in bundle_doors(ctx, name, build())]

    return attempts


def _built(build, doors_of):
    def attempts(ctx):
        folder = build(ctx)
        return doors_of(ctx, folder)

    return attempts


def _corpus_kinds(ctx):
    """Return the corpus as ``{kind: (file name, bytes)}`` aimed at the context's marker and secret."""
    ctx.marker.parent.mkdir(parents=True, exist_ok=True)
    ctx.secret.write_bytes(SECRET)
    return hostile.corpus(ctx.marker, ctx.secret)


def corpus_families(ctx):
    """Return one bundle family per kind of the hostile corpus."""
    kinds = _corpus_kinds(ctx)
    return [
        Family(f"corpus: {kind}", lambda ctx, name=name, data=data: bundle_doors(ctx, name, data))
        for kind, (name, data) in kinds.items()
    ]


def _amplifier(kind):
    """Return a builder of one kind of the corpus's amplifiers (memo reuse, equal hashes, shared metadata)."""
    return lambda: amplifiers.kinds()[kind]


def _artifacts(ctx, name):
    return ctx.stand.artifacts / name


FAMILIES = [
    Family(
        "1 memo reuse: 1 MiB memoised, 1,000 × bytearray",
        _bundles(("memo-reuse.joblib", _amplifier("memo bytearray of text x1000"))),
    ),
    Family(
        "2 hash-colliding dict keys and frozenset",
        _bundles(
            ("colliding-dict.joblib", _amplifier("colliding int keys")),
            ("colliding-frozenset.joblib", _amplifier("colliding frozenset x200")),
        ),
    ),
    Family(
        "3 metadata DAG: 14 levels × fan-out 8", _bundles(("dag.joblib", _amplifier("metadata list DAG")))
    ),
    Family(
        "4 .csv.gz with a 400 MB header line",
        _built(lambda ctx: hostile_readers.header_bomb(ctx.scratch / "long-header.csv.gz"), csv_doors),
    ),
    Family(
        "4 CSV with 2,000,000 columns",
        _built(lambda ctx: hostile_readers.wide_columns(ctx.scratch / "wide.csv"), csv_doors),
    ),
    Family(
        "5 recommendations.parquet of 60 M rows",
        _built(lambda ctx: hostile.parquet_many_rows(_artifacts(ctx, "parquet-60m")), folder_doors),
    ),
    Family(
        "6 Spark ALS claiming 400,000 × 4,096 factors",
        _built(lambda ctx: hostile.spark_als_claim(ctx.scratch / "spark-claim"), spark_doors),
    ),
    Family(
        "6 Spark ALS with userFactors linked out of the folder",
        _built(
            lambda ctx: hostile.spark_symlink_out(
                ctx.scratch / "spark-link", ctx.scratch / "outside" / "factors"
            ),
            spark_doors,
        ),
    ),
]


def good_inputs(ctx):
    """Return the attempts of good inputs, whose command peaks are the baselines of command growth."""
    folder = factories.write_cf_folder(_artifacts(ctx, "good"))
    csv = ctx.scratch / "good.csv"
    rows = [f"C{u:03d},I{(u * 7 + i) % 30:03d}" for u in range(40) for i in range(6)]
    csv.write_text("customer_id,item_id\n" + "\n".join(rows) + "\n")
    return {
        "bundle_models": folder_doors(ctx, folder)[1][1],
        "train_models": csv_doors(ctx, csv)[1][1],
    }
