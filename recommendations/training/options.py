"""What training accepts: input formats, file names and parameter defaults.

Kept free of pandas, scipy, scikit-learn and implicit, so that the admin's training page
and the Celery task module can import it in a serving process without loading them.
"""

from dataclasses import dataclass

FORMATS = ("generic", "online-retail")
ONLINE_RETAIL_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID")
REQUIRED_COLUMNS = {
    "generic": ("customer_id", "item_id"),
    "online-retail": ONLINE_RETAIL_COLUMNS,
    "items": ("item_id", "title"),
}
# File name endings pandas reads (compression from the last suffix).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip")

# ALS, chosen on validation windows of the UCI Online Retail data (train before 2011-10-01,
# validate on October; see docs/EVALUATION.md). implicit's regularisation is not scaled by
# the number of interactions: a much larger or denser data set may want it re-tuned.
DEFAULT_FACTORS = 128
DEFAULT_ITERATIONS = 20
DEFAULT_REGULARIZATION = 30.0
DEFAULT_ALPHA = 2.0
DEFAULT_TOP_N = 50


@dataclass(frozen=True)
class TrainingOptions:
    """How a run reads its files and fits its models: plain values, as a task message carries them."""

    data_format: str = "generic"
    split_date: str | None = None  # ISO date: train before it, evaluate on what follows
    factors: int = DEFAULT_FACTORS
    iterations: int = DEFAULT_ITERATIONS
    regularization: float = DEFAULT_REGULARIZATION
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self):
        for name, kind in (
            ("factors", int),
            ("iterations", int),
            ("regularization", float),
            ("alpha", float),
        ):
            object.__setattr__(self, name, kind(getattr(self, name)))

    def describe(self) -> str:
        """Return the note a version trained with these options gets: format, split and ALS parameters."""
        details = f"{self.data_format}, split {self.split_date}" if self.split_date else self.data_format
        return f"{details}; {self.factors} factors, {self.iterations} iterations, alpha {self.alpha:g}"
