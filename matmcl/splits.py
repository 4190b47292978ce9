"""Film-level splits (every row and patch of a film on one side), retrieval gallery / generation sets, and the
condition scaler fitted on training films only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from matmcl.schema import CONDITION_COLUMNS


def split_ids(ids: Sequence[str], fractions: Sequence[float], seed: int) -> pd.DataFrame:
    """Assign each id to train/val/test in the given proportions (seeded shuffle; rounding goes to train)."""
    ids = np.asarray(sorted(ids))
    if not np.isclose(sum(fractions), 1.0) or len(fractions) != 3 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val, n_test = (int(round(f * len(ids))) for f in fractions[1:])
    labels = np.empty(len(ids), dtype=object)
    labels[order] = ["test"] * n_test + ["val"] * n_val + ["train"] * (len(ids) - n_val - n_test)
    return pd.DataFrame({"id": ids, "split": labels})


def film_splits(film_ids: Sequence[str], fractions: Sequence[float], seed: int, gallery_fraction: float) -> pd.DataFrame:
    """`film_id, split, gallery, generation`: test films are divided into the retrieval gallery and the
    generation set (conditions never seen in training)."""
    splits = split_ids(film_ids, fractions, seed).rename(columns={"id": "film_id"})
    test = splits.index[splits["split"] == "test"].to_numpy()
    gallery = np.random.default_rng([seed, 1]).permutation(test)[: int(round(gallery_fraction * len(test)))]
    splits["gallery"] = splits.index.isin(gallery)
    splits["generation"] = (splits["split"] == "test") & ~splits["gallery"]
    return splits


def fit_scaler(conditions: pd.DataFrame) -> dict:
    """Mean and (population) standard deviation of the six conditions, as sklearn's StandardScaler computes them."""
    values = conditions[list(CONDITION_COLUMNS)].to_numpy(float)
    scale = values.std(axis=0)
    return {"columns": list(CONDITION_COLUMNS), "mean": values.mean(axis=0).tolist(),
            "scale": np.where(scale > 0, scale, 1.0).tolist(), "n_samples": len(values)}

