"""Synthetic CF and CB artifact folders, and the transactions behind them, with the shape of real retail data.

Customers belong to latent taste segments; each item is the favourite of one segment.
A segment buys items in proportion to a skewed (Zipf-like) popularity, with a long tail,
times its affinity for the item, which is ``TASTE_BOOST`` times higher for its own
favourites: about half of a customer's purchases follow their taste, often into the long
tail, the rest follow popularity. A factor model learns the tastes from the purchases and
beats a most-popular list by about 2x NDCG@10 on a date split; popularity cannot. Item factors are a
random projection of (log popularity, log affinities) plus noise; a customer's factors
are the mean of the factors of what they bought plus noise, so scores follow both taste
and popularity, and precomputed recommendations are the exact top N of those scores
among items the customer does not have. Product names are composed from word lists, the
motif from the item's favourite segment, so item text correlates with taste.

The purchases and the catalogue are also written as CSV files (``interactions.csv``:
customer_id, item_id, weight, timestamp; ``items.csv``: item_id, title), the input
``train_models`` reads, so the demo can train real models from them. Each customer-item
pair gets the date of a day in ``DEMO_YEAR``, so a split date works on them too.

Everything is vectorised over customers: seed scale (552,782 customers, 7,214 items, 64
factors) takes well under a minute.
"""

import calendar
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse

from . import cb, cf
from .artifacts import write_cb_artifacts, write_cf_artifacts
from .exceptions import TrainingError

SEGMENTS = 24
DEMO_YEAR = 2024
ZIPF_EXPONENT = 1.05
MEDIAN_ITEMS_PER_CUSTOMER = 7
MAX_ITEMS_PER_CUSTOMER = 60
# Each item is a favourite of one taste segment, whose customers buy it this many times more
# often than popularity alone says: structure a factor model can learn and popularity cannot.
TASTE_BOOST = 20.0
AFFINITY_NOISE = 0.5  # sigma of the log-normal noise on every affinity

COLOURS = (
    "RED", "BLUE", "PINK", "WHITE", "BLACK", "GREEN", "IVORY", "CREAM", "GOLD", "SILVER",
    "PURPLE", "ORANGE", "YELLOW", "PASTEL", "NATURAL", "ANTIQUE",
)  # fmt: skip
STYLES = ("VINTAGE", "RETRO", "SMALL", "LARGE", "JUMBO", "MINI", "SET OF 3", "SET OF 6", "HANGING", "WOODEN",
          "GLASS", "ENAMEL", "ZINC", "CERAMIC", "PAPER", "FELT")  # fmt: skip
MOTIFS = ("HEART", "RETROSPOT", "SPOTTY", "FLORAL", "BIRD", "STAR", "SKULL", "OWL", "CHRISTMAS", "REGENCY",
          "PAISLEY", "DOLLY GIRL", "SPACEBOY", "WOODLAND", "STRAWBERRY", "BUTTERFLY", "ROSE", "LOVE",
          "KITCHEN", "PARTY", "GARDEN", "FAIRY", "SCANDINAVIAN", "ORIENTAL")  # fmt: skip
PRODUCTS = ("T-LIGHT HOLDER", "LUNCH BAG", "CAKE CASES", "MUG", "TEA TOWEL", "COAT HANGER", "NOTEBOOK",
            "CUSHION COVER", "CANDLE", "BUNTING", "DOORSTOP", "PHOTO FRAME", "TRINKET BOX", "WATER BOTTLE",
            "GIFT WRAP", "PLATE", "BOWL", "JAM JAR", "LANTERN", "CLOCK", "SHOPPING BAG", "PURSE",
            "STORAGE TIN", "NAPKINS", "PARASOL", "SIGN", "BUNNY DECORATION", "WALL ART")  # fmt: skip


def make_demo_artifacts(
    out_dir,
    *,
    users=20000,
    items=2000,
    factors=32,
    seed=0,
    recs_share=0.5,
    top_n=20,
    seed_folders=True,
    progress=None,
):
    """Write synthetic ``interactions.csv``, ``items.csv`` and (``seed_folders``) ``cf/``, ``cb/`` to ``out_dir``.

    The CSVs are the same for the same seed with or without the folders. Return a summary dict.
    """
    if users < 1 or items < 2:
        raise TrainingError(f"Need at least 1 user and 2 items (got users={users}, items={items}).")
    if factors < 2:
        raise TrainingError(f"factors={factors} must be at least 2.")
    if not 0.0 <= recs_share <= 1.0:
        raise TrainingError(f"recs_share={recs_share} must be between 0 and 1.")
    if top_n < 1:
        raise TrainingError(f"top_n={top_n} must be at least 1.")
    say = progress or (lambda message: None)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)

    say(f"generating {users} customers x {items} items")
    customer_ids = _customer_ids(users)
    item_ids = _item_ids(items, rng)
    popularity_weight = _zipf_weights(items, rng)
    segments = min(SEGMENTS, items)
    affinity = _taste_affinity(rng, items, segments)
    user_segment = rng.integers(0, segments, size=users)
    interactions = _interactions(rng, users, popularity_weight, affinity, user_segment)
    catalogue = pd.DataFrame({"item_id": item_ids, "title": _product_names(rng, affinity)})

    say(f"  {interactions.nnz} customer-item pairs; writing interactions.csv and items.csv")
    interactions_csv = write_interactions_csv(
        out_dir / "interactions.csv", interactions, customer_ids, item_ids, rng
    )
    items_csv = _replace_file(out_dir / "items.csv", lambda tmp: catalogue.to_csv(tmp, index=False))
    summary = {
        "users": users,
        "items": items,
        "interactions": int(interactions.nnz),
        "recommendations": 0,
        "factors": factors,
        "cb_items": 0,
        "cf_dir": None,
        "cb_dir": None,
        "interactions_csv": interactions_csv,
        "items_csv": items_csv,
    }
    if seed_folders:
        summary.update(
            _write_seed_folders(
                out_dir,
                np.random.default_rng([seed, 1]),
                customer_ids=customer_ids,
                item_ids=item_ids,
                popularity_weight=popularity_weight,
                affinity=affinity,
                interactions=interactions,
                catalogue=catalogue,
                params={
                    "users": users,
                    "items": items,
                    "factors": factors,
                    "seed": seed,
                    "recs_share": recs_share,
                    "top_n": top_n,
                    "segments": segments,
                },
                say=say,
            )
        )
    summary["seconds"] = time.perf_counter() - started
    return summary


def _write_seed_folders(
    out_dir, rng, *, customer_ids, item_ids, popularity_weight, affinity, interactions, catalogue, params, say
):
    """Write seed-layout ``out_dir/cf`` (factors, top N for a share of customers) and ``out_dir/cb``."""
    users, items, factors = len(customer_ids), len(item_ids), params["factors"]
    say(f"building {factors} factors")
    features = np.column_stack([np.log(popularity_weight * items), np.log(affinity)])
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    projection = rng.normal(0.0, 1.0 / np.sqrt(features.shape[1]), size=(features.shape[1], factors))
    item_factors = (features @ projection + rng.normal(0.0, 0.3, size=(items, factors))).astype(np.float32)
    item_factors /= np.float32(np.sqrt(factors))
    owned = interactions.copy()
    owned.data[:] = 1.0
    per_user = np.asarray(owned.sum(axis=1)).ravel()
    user_factors = scipy.sparse.diags(1.0 / per_user) @ owned @ item_factors
    user_factors = np.asarray(user_factors, dtype=np.float32)
    user_factors += rng.normal(0.0, 0.1, size=user_factors.shape).astype(np.float32) * np.float32(
        np.abs(user_factors).mean()
    )
    item_popularity = np.bincount(interactions.indices, minlength=items).astype(np.float32)

    n_with_recs = int(round(users * params["recs_share"]))
    say(f"precomputing top {params['top_n']} for {n_with_recs} customers")
    rec_users = np.sort(rng.choice(users, size=n_with_recs, replace=False)).astype(np.int64)
    recommendations = _recommendations(
        user_factors,
        item_factors,
        interactions,
        rec_users,
        min(params["top_n"], items),
        customer_ids,
        item_ids,
    )

    metadata = {"synthetic": True, "params": params}
    cf_dir = write_cf_artifacts(
        out_dir / "cf",
        user_ids=customer_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        recommendations=recommendations,
        interactions=interactions,
        item_popularity=item_popularity,
        metadata=metadata,
    )
    say(f"  wrote {cf_dir}")

    say("building content vectors from the product names")
    content = cb.train_tfidf(catalogue, n_components=min(factors, 64), random_state=params["seed"])
    cb_dir = write_cb_artifacts(
        out_dir / "cb",
        item_ids=content.item_ids,
        item_vectors=content.item_vectors,
        items=catalogue,
        metadata={**metadata, "params": {**params, **content.params}},
    )
    say(f"  wrote {cb_dir}")
    return {
        "recommendations": len(recommendations),
        "cb_items": len(content.item_ids),
        "cf_dir": cf_dir,
        "cb_dir": cb_dir,
    }


def write_interactions_csv(path, interactions, customer_ids, item_ids, rng):
    """Write one row per customer-item pair: customer_id, item_id, weight (purchases), timestamp (a date).

    ``interactions`` is CSR (n_customers, n_items) of purchase counts. Return the path.
    """
    n_pairs = interactions.nnz
    days = rng.integers(0, 366 if calendar.isleap(DEMO_YEAR) else 365, size=n_pairs)
    dates = (np.datetime64(f"{DEMO_YEAR}-01-01") + days.astype("timedelta64[D]")).astype(str)
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(customer_ids, np.diff(interactions.indptr)),
            "item_id": item_ids[interactions.indices],
            "weight": interactions.data.astype(np.int64),
            "timestamp": dates,
        }
    )
    return _replace_file(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def _replace_file(path, write):
    """Run ``write(tmp)`` on a sibling temporary file, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _customer_ids(n):
    width = max(6, len(str(n - 1)))
    return np.char.add("C", np.char.zfill(np.arange(n).astype(str), width))


def _item_ids(n, rng):
    """Return n unique stock-code-like ids ("21034", "85123A"), sorted."""
    if n > 80000:
        width = max(5, len(str(n - 1)))
        return np.char.add("I", np.char.zfill(np.arange(n).astype(str), width))
    numbers = np.sort(rng.choice(np.arange(10000, 100000), size=n, replace=False))
    suffix = np.where(rng.random(n) < 0.1, rng.choice(np.array(list("ABCDEFGLPS")), size=n), "")
    return np.char.add(numbers.astype(str), suffix)


def _zipf_weights(n, rng):
    """Return Zipf-like item purchase probabilities (sum 1) in a random item order."""
    weights = 1.0 / (np.arange(n) + 10.0) ** ZIPF_EXPONENT
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def _taste_affinity(rng, items, segments):
    """Return (items, segments) float64 purchase affinities: TASTE_BOOST for an item's home segment, noisy."""
    home = rng.integers(0, segments, size=items)
    affinity = np.exp(rng.normal(0.0, AFFINITY_NOISE, size=(items, segments)))
    affinity[np.arange(items), home] *= TASTE_BOOST
    return affinity


def _interactions(rng, users, popularity_weight, affinity, user_segment):
    """Return CSR float32 (users, items) of purchase counts: a few to dozens of items per customer."""
    counts = np.clip(
        np.rint(rng.lognormal(np.log(MEDIAN_ITEMS_PER_CUSTOMER), 0.8, size=users)), 1, MAX_ITEMS_PER_CUSTOMER
    ).astype(np.int64)
    rows_parts, cols_parts = [], []
    for segment in range(affinity.shape[1]):
        members = np.flatnonzero(user_segment == segment)
        draws = counts[members]
        if not draws.sum():
            continue
        p = popularity_weight * affinity[:, segment]
        cumulative = np.cumsum(p / p.sum())
        picks = np.searchsorted(cumulative, rng.random(int(draws.sum())) * cumulative[-1], side="right")
        rows_parts.append(np.repeat(members, draws))
        cols_parts.append(np.minimum(picks, len(p) - 1))
    rows = np.concatenate(rows_parts)
    cols = np.concatenate(cols_parts)
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(users, len(popularity_weight))
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def _recommendations(user_factors, item_factors, interactions, rec_users, n, customer_ids, item_ids):
    """Return the exact top-n unseen items of ``rec_users`` as customer_id, item_id, score, rank."""
    from implicit.cpu.topk import topk
    from threadpoolctl import threadpool_limits

    if len(rec_users) == 0:
        return pd.DataFrame({"customer_id": [], "item_id": [], "score": [], "rank": []})
    with threadpool_limits(1, "blas"):
        ids, scores = topk(
            item_factors,
            user_factors[rec_users],
            n,
            filter_query_items=interactions[rec_users],
            num_threads=0,
        )
    valid = (ids >= 0) & ~cf.unranked(scores)
    users, ranks = np.nonzero(valid)
    return pd.DataFrame(
        {
            "customer_id": customer_ids[rec_users[users]],
            "item_id": item_ids[ids[valid]],
            "score": scores[valid].astype(np.float32),
            "rank": (ranks + 1).astype(np.int32),
        }
    )


def _product_names(rng, affinity):
    """Return one upper-case product name per item, its motif taken from its favourite segment."""
    n = affinity.shape[0]
    motif = np.array(MOTIFS)[np.argmax(affinity, axis=1) % len(MOTIFS)]
    colour = np.array(COLOURS)[rng.integers(0, len(COLOURS), size=n)]
    style = np.array(STYLES)[rng.integers(0, len(STYLES), size=n)]
    product = np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), size=n)]
    use_colour = rng.random(n) < 0.7
    use_style = rng.random(n) < 0.5
    names = [
        " ".join(part for part in (s if us else "", c if uc else "", m, p) if part)
        for s, c, m, p, us, uc in zip(style, colour, motif, product, use_style, use_colour, strict=True)
    ]
    return np.array(names, dtype=object)
