"""Where the shared data sets are: ``HYBRIDREC_DATA_DIR``, else ``../shared/data`` beside the checkout.

Tests and benchmarks that need a data set skip without it (with a reason starting
``MISSING_DATA``, which the test summary counts); the product itself never needs one.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MISSING_DATA = "missing data"


def data_dir() -> Path:
    """Return the folder that holds the data sets (``online_retail/``, …)."""
    configured = os.environ.get("HYBRIDREC_DATA_DIR")
    return Path(configured).expanduser() if configured else ROOT.parent / "shared" / "data"


ONLINE_RETAIL_FILE = data_dir() / "online_retail" / "online_retail.csv.xz"
ONLINE_RETAIL_MISSING = (
    f"{MISSING_DATA}: no {ONLINE_RETAIL_FILE} (set HYBRIDREC_DATA_DIR to the folder holding online_retail/)"
)
