"""Read interactions and item texts, clean them, and split them by date for evaluation.

Two input formats:

``generic``
    interactions CSV ``customer_id,item_id[,weight][,timestamp]`` (one row per event; the
    weights of a customer-item pair are summed, 1 per row without a weight column) and an
    optional items CSV ``item_id,title[,...]``.
``online-retail``
    the UCI Online Retail transactions file (``InvoiceNo, StockCode, Description, Quantity,
    InvoiceDate, UnitPrice, CustomerID, Country``), compressed or not. Rows without a
    customer, cancellations (invoice numbers starting with C), non-positive quantities and
    codes that are not products (POST, M, DOT, BANK CHARGES, C2, PADS, gift vouchers, ...:
    anything but five digits and optional letters) are dropped. A pair's weight is the
    number of distinct invoices it appears on; an item's title is its most frequent
    description.

Customer and item ids are kept as strings; a float-looking customer id ("17850.0") loses
its ".0".
"""

import lzma
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse

from modelstore.bundles import BundleError, Limits, OversizedBundle
from modelstore.bundles.filebudget import csv_columns, csv_stream, read_csv_frame
from modelstore.bundles.limits import DEFAULT_LIMITS
from recommendations.feedback.spreadsheet import ADDED_QUOTE

from .exceptions import TrainingError, one_line
from .options import CSV_SUFFIXES, FORMATS, ONLINE_RETAIL_COLUMNS, REQUIRED_COLUMNS

# Five digits and optional letters; anything else is postage, fees, manual entries or vouchers.
PRODUCT_CODE_PATTERN = r"\d{5}[A-Z]*"


@dataclass
class Dataset:
    """Training interactions as a users x items matrix, plus an optional held-out test set.

    ``train`` is CSR float32 (n_users, n_items) of summed weights; ``test`` is CSR float32
    of the same shape with 1.0 for each held-out pair, or None without a split.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    train: scipy.sparse.csr_matrix
    test: scipy.sparse.csr_matrix | None = None
    items: pd.DataFrame | None = None
    stats: dict = field(default_factory=dict)

    @property
    def n_users(self):
        return len(self.user_ids)

    @property
    def n_items(self):
        return len(self.item_ids)

    def test_pairs(self):
        """Return the held-out pairs as a DataFrame customer_id, item_id."""
        if self.test is None:
            return pd.DataFrame({"customer_id": [], "item_id": []}, dtype=str)
        coo = self.test.tocoo()
        return pd.DataFrame({"customer_id": self.user_ids[coo.row], "item_id": self.item_ids[coo.col]})


def load_dataset(
    interactions_path,
    *,
    items_path=None,
    data_format="generic",
    split_date=None,
    split_end=None,
    limits: Limits = DEFAULT_LIMITS,
):
    """Read, clean and (optionally) split interactions; return a ``Dataset``.

    Each file is read within ``limits`` (decompressed size, line length, column count).
    """
    if data_format not in FORMATS:
        raise TrainingError(f"format={data_format!r} is not one of {', '.join(map(repr, FORMATS))}.")
    if data_format == "online-retail":
        events, items, stats = read_online_retail(interactions_path, limits=limits)
        if items_path is not None:
            items = read_items_csv(items_path, limits=limits)
    else:
        events, stats = read_interactions_csv(interactions_path, limits=limits)
        items = read_items_csv(items_path, limits=limits) if items_path is not None else None
    if (split_date is not None or split_end is not None) and "timestamp" not in events.columns:
        raise TrainingError(
            f"{interactions_path}: a split date needs a 'timestamp' column, and there is none."
        )
    return build_dataset(events, items=items, split_date=split_date, split_end=split_end, stats=stats)


def missing_columns(fileobj, *, name, kind, limits: Limits = DEFAULT_LIMITS):
    """Return the columns a ``kind`` file (a format, or "items") needs that ``fileobj`` lacks.

    Only the header line is read, at most ``limits.max_line_bytes`` of it, decompressed as
    its first bytes say.
    """
    if not str(name).lower().endswith(CSV_SUFFIXES):
        raise TrainingError(f"{name}: not a CSV file (use one of {', '.join(CSV_SUFFIXES)}).")
    try:
        with csv_stream(fileobj, limits, name=str(name)) as stream:
            columns = set(csv_columns(stream))
    except OversizedBundle as exc:
        raise TrainingError(f"{name}: {_reason(exc, name)}") from None
    except BundleError as exc:
        raise TrainingError(f"{name}: cannot read it as CSV ({_reason(exc, name)}).") from None
    except (ValueError, OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise TrainingError(f"{name}: cannot read it as CSV ({one_line(exc)}).") from None
    if not columns - {""}:
        raise TrainingError(f"{name}: the file is empty.")
    return [c for c in REQUIRED_COLUMNS[kind] if c not in columns]


def _reason(exc, name):
    """Return a bundle error's text without the file name it starts with."""
    text = one_line(exc)
    return text[len(str(name)) :].lstrip(" :") if text.startswith(str(name)) else text


def read_interactions_csv(path, *, limits: Limits = DEFAULT_LIMITS):
    """Return ``(events, stats)`` from a generic interactions CSV.

    ``events`` has columns customer_id, item_id (str), weight (float32) and, when the file
    has one, timestamp (datetime64).
    """
    frame = _read_csv(
        path, required=("customer_id", "item_id"), dtype={"customer_id": str, "item_id": str}, limits=limits
    )
    stats = {"rows_read": len(frame)}
    # export_events quotes ids a spreadsheet would run as formulas: read them as they were.
    customer_ids, item_ids = (
        frame[c].str.replace(ADDED_QUOTE, "", regex=True) for c in ("customer_id", "item_id")
    )
    events = pd.DataFrame(
        {
            "customer_id": _clean_ids(customer_ids),
            "item_id": _clean_ids(item_ids, strip_float=False),
        }
    )
    if "weight" in frame.columns:
        weight = pd.to_numeric(frame["weight"], errors="coerce")
        _refuse_unparsed(path, "weight", frame["weight"], weight, "a number")
        events["weight"] = weight.astype(np.float32)
    else:
        events["weight"] = np.float32(1.0)
    if "timestamp" in frame.columns:
        timestamp = _to_datetime(frame["timestamp"])
        _refuse_unparsed(path, "timestamp", frame["timestamp"], timestamp, "a date or time")
        events["timestamp"] = timestamp
    missing_id = events["customer_id"].isna() | events["item_id"].isna()
    non_positive = ~missing_id & ~(events["weight"] > 0)
    stats["dropped_missing_id"] = int(missing_id.sum())
    stats["dropped_non_positive_weight"] = int(non_positive.sum())
    events = events[~(missing_id | non_positive)].reset_index(drop=True)
    if events.empty:
        raise TrainingError(f"{path}: no usable interactions (rows need ids and a positive weight).")
    return events, stats


def read_items_csv(path, *, limits: Limits = DEFAULT_LIMITS):
    """Return the items CSV as a DataFrame with item_id (str), title (str) and any other columns."""
    frame = _read_csv(
        path, required=("item_id", "title"), dtype={"item_id": str, "title": str}, limits=limits
    )
    frame["item_id"] = _clean_ids(frame["item_id"], strip_float=False)
    frame = frame[frame["item_id"].notna()].drop_duplicates("item_id")
    return frame.reset_index(drop=True)


def read_online_retail(path, *, limits: Limits = DEFAULT_LIMITS):
    """Return ``(events, items, stats)`` from the UCI Online Retail file.

    ``events``: one row per distinct (customer, item, invoice) with weight 1.0 and the
    invoice time; ``items``: item_id, title (most frequent description of each kept code).
    """
    frame = _read_csv(
        path,
        required=ONLINE_RETAIL_COLUMNS,
        dtype={"InvoiceNo": str, "StockCode": str, "Description": str, "CustomerID": str},
        limits=limits,
    )
    stats = {"rows_read": len(frame)}
    customer = _clean_ids(frame["CustomerID"])
    code = frame["StockCode"].str.strip().str.upper()
    quantity = pd.to_numeric(frame["Quantity"], errors="coerce")
    timestamp = _to_datetime(frame["InvoiceDate"])

    keep = pd.Series(True, index=frame.index)
    for reason, bad in (
        ("no_customer", customer.isna()),
        ("cancelled", frame["InvoiceNo"].str.strip().str.upper().str.startswith("C").fillna(False)),
        ("non_positive_quantity", ~(quantity > 0)),
        ("non_product_code", ~code.str.fullmatch(PRODUCT_CODE_PATTERN).fillna(False)),
        ("bad_date", timestamp.isna()),
    ):
        stats[f"dropped_{reason}"] = int((keep & bad).sum())
        keep &= ~bad
    if not keep.any():
        raise TrainingError(f"{path}: no purchases left after dropping cancellations and non-product rows.")

    kept = pd.DataFrame(
        {
            "customer_id": customer[keep],
            "item_id": code[keep],
            "invoice": frame.loc[keep, "InvoiceNo"].str.strip(),
            "timestamp": timestamp[keep],
            "description": frame.loc[keep, "Description"].str.strip(),
        }
    )
    events = (
        kept.groupby(["customer_id", "item_id", "invoice"], sort=False, observed=True)["timestamp"]
        .min()
        .reset_index()
        .drop(columns="invoice")
    )
    events["weight"] = np.float32(1.0)
    items = _most_frequent_description(kept)
    return events[["customer_id", "item_id", "weight", "timestamp"]], items, stats


def build_dataset(events, *, items=None, split_date=None, split_end=None, stats=None):
    """Return a ``Dataset`` from cleaned events, holding out what was first bought on/after ``split_date``.

    With a split, training uses events before the date; the test set holds the
    (customer, item) pairs bought on or after it that the customer had not bought
    before, for customers and items known in training. The others are counted in
    ``stats`` (``test_dropped_unknown_customer``, ``test_dropped_unknown_item``).
    ``split_end`` drops every event on or after it first, so that a validation window
    (train before one date, test up to the next) leaves the later test period unseen.
    """
    stats = dict(stats or {})
    if split_end is not None:
        if split_date is None:
            raise TrainingError("An end of the held-out period needs a split date too.")
        end = _split_timestamp(split_end, events["timestamp"])
        if end <= _split_timestamp(split_date, events["timestamp"]):
            raise TrainingError(f"The held-out period ends ({end.date()}) before it starts ({split_date}).")
        stats["dropped_after_split_end"] = int((events["timestamp"] >= end).sum())
        stats["split_end"] = str(end.date())
        events = events[events["timestamp"] < end]
    later = None
    if split_date is not None:
        split = _split_timestamp(split_date, events["timestamp"])
        before = (events["timestamp"] < split).to_numpy()
        later = events[~before]
        events = events[before]
        stats["split_date"] = str(split.date())
        if events.empty:
            raise TrainingError(f"No interactions before the split date {split.date()}.")

    user_ids = np.sort(events["customer_id"].unique().astype(str))
    item_ids = np.sort(events["item_id"].unique().astype(str))
    user_index, item_index = pd.Index(user_ids), pd.Index(item_ids)
    rows = user_index.get_indexer(events["customer_id"])
    cols = item_index.get_indexer(events["item_id"])
    shape = (len(user_ids), len(item_ids))
    train = scipy.sparse.csr_matrix(
        (events["weight"].to_numpy(np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    train.sum_duplicates()
    train.sort_indices()
    stats.update(n_users=shape[0], n_items=shape[1], n_interactions=int(train.nnz))

    test = None
    if later is not None:
        pairs = later[["customer_id", "item_id"]].drop_duplicates()
        rows = user_index.get_indexer(pairs["customer_id"])
        cols = item_index.get_indexer(pairs["item_id"])
        unknown_customer = rows < 0
        unknown_item = ~unknown_customer & (cols < 0)
        known = ~(unknown_customer | unknown_item)
        rows, cols = rows[known], cols[known]
        train_codes = _pair_codes(train.tocoo().row, train.tocoo().col, shape[1])
        new = ~np.isin(_pair_codes(rows, cols, shape[1]), train_codes)
        test = scipy.sparse.csr_matrix(
            (np.ones(int(new.sum()), dtype=np.float32), (rows[new], cols[new])), shape=shape, dtype=np.float32
        )
        test.sort_indices()
        stats.update(
            test_pairs=int(test.nnz),
            test_users=int(np.count_nonzero(np.diff(test.indptr))),
            test_repeat_pairs=int((~new).sum()),
            test_dropped_unknown_customer=int(unknown_customer.sum()),
            test_dropped_unknown_item=int(unknown_item.sum()),
        )
    return Dataset(user_ids=user_ids, item_ids=item_ids, train=train, test=test, items=items, stats=stats)


def _pair_codes(rows, cols, n_cols):
    return np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)


def _read_csv(path, *, required, dtype, limits):
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such file.")
    try:
        frame = read_csv_frame(path, limits, dtype=dtype, skipinitialspace=True)
    except OversizedBundle as exc:
        raise TrainingError(f"{path}: {_reason(exc, path.name)}") from None
    except BundleError as exc:
        raise TrainingError(f"{path}: cannot read it as CSV ({_reason(exc, path.name)}).") from None
    except pd.errors.EmptyDataError:
        raise TrainingError(f"{path}: the file is empty.") from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError, lzma.LZMAError, zlib.error) as exc:
        reason = one_line(exc)
        raise TrainingError(f"{path}: cannot read it as CSV ({reason}).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TrainingError(
            f"{path}: missing column {', '.join(map(repr, missing))} (found: {', '.join(frame.columns)})."
        )
    return frame


def _clean_ids(values, *, strip_float=True):
    """Return ids as stripped strings (missing or blank -> NA), "17850.0" -> "17850" when asked."""
    ids = values.astype("string").str.strip()
    if strip_float:
        ids = ids.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    ids = ids.mask((ids == "").fillna(False))
    return ids.astype(object).where(ids.notna(), None)


def _to_datetime(values):
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", errors="coerce")  # Unix seconds
    try:
        return pd.to_datetime(values, errors="coerce", format="mixed")
    except (ValueError, TypeError):
        return pd.Series(pd.NaT, index=values.index)


def _refuse_unparsed(path, column, raw, parsed, expected):
    bad = parsed.isna() & raw.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise TrainingError(
            f"{path}: column {column!r} has {int(bad.sum())} value(s) that are not {expected} "
            f"(first: {raw.iloc[first]!r} on data row {first + 1})."
        )
    missing = raw.isna()
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0])
        raise TrainingError(f"{path}: column {column!r} is empty on data row {first + 1}.")


def _split_timestamp(split_date, timestamps):
    try:
        split = pd.Timestamp(split_date)
    except (ValueError, TypeError):
        raise TrainingError(f"split date {split_date!r} is not a date (use YYYY-MM-DD).") from None
    tz = getattr(timestamps.dtype, "tz", None)
    if tz is not None and split.tzinfo is None:
        split = split.tz_localize(tz)
    return split


def _most_frequent_description(kept):
    described = kept[kept["description"].notna() & (kept["description"] != "")]
    counts = described.groupby(["item_id", "description"], observed=True).size().rename("n").reset_index()
    # Most frequent first; ties go to the alphabetically first description, for a stable result.
    counts = counts.sort_values(["item_id", "n", "description"], ascending=[True, False, True])
    titles = counts.drop_duplicates("item_id").set_index("item_id")["description"]
    item_ids = np.sort(kept["item_id"].unique())
    return pd.DataFrame({"item_id": item_ids, "title": titles.reindex(item_ids).to_numpy()})
