"""What training accepts: input formats, file names and parameter defaults.

Kept free of pandas, scipy, scikit-learn and implicit, so that the admin's training page
and the Celery task module can import it in a serving process without loading them.
"""

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
