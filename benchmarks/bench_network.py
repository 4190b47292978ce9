"""Speed and information content of the fiber-network descriptors (matmcl.multiscale) on the virtual lab's frames.

Films are taken evenly over the rank of their drum speed (data/virtual_lab/conditions.csv), frame 0 of each
(640 × 480, 20 nm/px, 64-row info bar as listed in sem/frames.csv). Per frame: `network_descriptors`; reported are
the seconds per frame (one process, one thread) and the Spearman correlation of the measured anisotropy ratio
(and of L and T separately) with the drum speed and with the ground-truth orientation order of the film
(ground_truth/films.parquet; frames without a transverse load path, whose ratio is NaN, are left out). Writes
reports/network.json (or --out).

    python benchmarks/bench_network.py [--lab data/virtual_lab] [--films 40] [--out reports/network.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import stats

from matmcl.atomic import write_json
from matmcl.multiscale.descriptors import NetworkConfig, network_descriptors

TARGET_SECONDS_PER_FRAME = 0.1


def select_films(conditions: pd.DataFrame, n_films: int) -> pd.DataFrame:
    """`n_films` films evenly spread over the drum-speed rank (lowest and highest included)."""
    ordered = conditions.sort_values(["drum_speed_rpm", "film_id"]).reset_index(drop=True)
    picks = np.unique(np.linspace(0, len(ordered) - 1, min(n_films, len(ordered))).round().astype(int))
    return ordered.iloc[picks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path, default=Path("data/virtual_lab"))
    parser.add_argument("--films", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("reports/network.json"))
    args = parser.parse_args()
    conditions = pd.read_csv(args.lab / "conditions.csv")
    truth = pd.read_parquet(args.lab / "ground_truth" / "films.parquet")[["film_id", "orientation_order"]]
    frames = pd.read_csv(args.lab / "sem" / "frames.csv")
    frames = frames[frames["frame"] == 0]
    films = select_films(conditions, args.films).merge(truth, on="film_id").merge(frames, on="film_id")
    config = NetworkConfig()
    rows = []
    for film in films.itertuples():
        image = np.asarray(Image.open(args.lab / film.path))
        result = network_descriptors(image, film.pixel_size_nm, int(film.info_bar_px), config)
        rows.append({"film_id": film.film_id, "drum_speed_rpm": film.drum_speed_rpm,
                     "orientation_order_truth": film.orientation_order, **result})
    table = pd.DataFrame(rows)
    seconds = table["seconds"].to_numpy()

    def spearman(column: str, against: str) -> dict:
        rho, p = stats.spearmanr(table[column], table[against], nan_policy="omit")
        return {"rho": float(rho), "p_value": float(p)}

    report = {
        "frames": int(len(table)), "config": vars(config),
        "seconds_per_frame_median": float(np.median(seconds)), "seconds_per_frame_mean": float(seconds.mean()),
        "seconds_per_frame_max": float(seconds.max()), "target_seconds_per_frame": TARGET_SECONDS_PER_FRAME,
        "spearman": {f"{column}_vs_{against}": spearman(column, against)
                     for column in ("anisotropy_ratio", "stiffness_L_rel", "stiffness_T_rel")
                     for against in ("drum_speed_rpm", "orientation_order_truth")},
        "ranges": {column: [float(table[column].min()), float(table[column].median()), float(table[column].max())]
                   for column in ("anisotropy_ratio", "stiffness_L_rel", "stiffness_T_rel", "coordination_number",
                                  "load_bearing_fraction_L", "energy_concentration_L", "n_nodes")},
        "frames_without_path_L": int((table["stiffness_L_rel"] == 0).sum()),
        "frames_without_path_T": int((table["stiffness_T_rel"] == 0).sum()),  # their anisotropy ratio is NaN
        "all_finite_else": bool(np.isfinite(table.drop(columns=["film_id", "anisotropy_ratio"]).to_numpy(float)).all()),
        "per_frame": table.to_dict(orient="records"),
    }
    write_json(report, args.out)
    print({key: report[key] for key in ("frames", "seconds_per_frame_median", "seconds_per_frame_mean", "spearman",
                                        "frames_without_path_T", "all_finite_else")})


if __name__ == "__main__":
    main()
