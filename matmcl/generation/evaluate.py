"""Evaluate the generator (stage `fid`), as in the paper but sound at 10 images per material.

For a fixed set of seen (training) and unseen (held-out `generation`) films: `images_per_film` crops generated from
each film's longitudinal conditions, and 2 × that many real crops (same size, native pixel size) split in halves A
and B. Features are the SGPT vision encoder's pre-projector output (matmcl.generation.data.encoder_features).

- FID and KID (matmcl.generation.fid) of every generated set against every film's real half A: a material ×
  material matrix whose diagonal (own film) should be low against the off-diagonal (other films); `real_floor` is
  FID/KID of half A vs half B of the same film, what "identical" reads as at this N.
- Fiber features measured (`measure_frame`, no info bar) on a mosaic of each set's crops; Pearson r across films of
  generated vs real A, and real A vs real B as the floor.
- Prior: cosine between sampled structure embeddings and the true (mean real-patch) embedding of each unseen film,
  against the baseline of the nearest training film's (standardised conditions) true embedding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats

from matmcl.artifacts import DESIGN_REPORT, GENERATION_PLOTS_DIR, GENERATION_REPORT, SPLITS_FILE, stage_report
from matmcl.atomic import write_json
from matmcl.config import Workspace, section
from matmcl.features.measure import measure_frame
from matmcl.generation.config import GenerationConfig
from matmcl.generation.data import GeneratorData, encoder_features, longitudinal, random_crops
from matmcl.generation.fid import frechet_distance, kernel_distance
from matmcl.generation.generator import StructureGenerator
from matmcl.generation.plots import plot_fid_heatmap, plot_strips
from matmcl.schema import CONDITION_COLUMNS, FILM_ID, PATCHES_FILE, SPLIT
from matmcl.training.data import PatchBank, ProcessedData

FEATURES = ("orientation_order", "diameter_nm", "pore_size_um")
SEEN, UNSEEN = "seen", "unseen"
GENERATION_SET = "generation"  # splits.parquet flag of the held-out films kept for generation
EXAMPLE_ROWS = 3  # conditions in the example `matmcl generate` grid
MIN_FILMS_FOR_R = 3
MIN_FILMS_FOR_FID = 2  # a material × material matrix needs an off-diagonal


def mosaic(crops: np.ndarray, columns: int) -> np.ndarray:
    """Crops (n, S, S) tiled `columns` wide (the last row padded with the mean grey level) → one 2-D frame."""
    n, size = len(crops), crops.shape[1]
    rows = -(-n // columns)
    tiles = np.full((rows * columns, size, size), crops.mean(), dtype=crops.dtype)
    tiles[:n] = crops
    return tiles.reshape(rows, columns, size, size).transpose(0, 2, 1, 3).reshape(rows * size, columns * size)


def measure_crops(crops: np.ndarray, pixel_size_nm: float, columns: int) -> dict[str, float]:
    """FEATURES measured on the mosaic of `crops` (NaN where the measurement finds no fibers)."""
    measured = measure_frame(mosaic(crops, columns), pixel_size_nm, info_bar="none")
    return {k: float("nan") if measured[k] is None else float(measured[k]) for k in FEATURES}


def _json_safe(values: Mapping[str, float]) -> dict[str, float | None]:
    """NaN (nothing measured) → None, so that the report is strict JSON."""
    return {k: None if np.isnan(v) else v for k, v in values.items()}


def _pearson_result(x: Sequence[float], y: Sequence[float]):
    """scipy's Pearson result over the pairs where both are finite (None with fewer than MIN_FILMS_FOR_R or no
    spread)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < MIN_FILMS_FOR_R or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return stats.pearsonr(x[ok], y[ok])


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson r over the pairs where both are finite (None with fewer than MIN_FILMS_FOR_R or no spread)."""
    result = _pearson_result(x, y)
    return None if result is None else float(result.statistic)


def pearson_ci95(x: Sequence[float], y: Sequence[float]) -> list[float] | None:
    """95 % confidence interval of `pearson` (Fisher z, scipy; None where r is undefined or fewer than 4 pairs)."""
    result = _pearson_result(x, y)
    if result is None or np.sum(np.isfinite(x) & np.isfinite(y)) < 4:
        return None
    interval = result.confidence_interval(0.95)
    return [float(interval.low), float(interval.high)]


def _against_real_a(measured: Mapping[str, Mapping[str, Mapping[str, float]]], films: Sequence[str], image_set: str,
                    key: str) -> tuple[list[float], list[float]]:
    """Feature `key` of `image_set` and of the real half A, per film (the pairs of a feature correlation)."""
    return [measured[f][image_set][key] for f in films], [measured[f]["real A"][key] for f in films]


def distance_block(generated: list[np.ndarray], real_a: list[np.ndarray], real_b: list[np.ndarray]
                   ) -> tuple[dict[str, Any], np.ndarray]:
    """FID/KID summaries of generated-vs-real matrices and the real-vs-real floor; returns the FID matrix."""
    summary: dict[str, Any] = {}
    fid_matrix = None
    for name, distance in (("fid", frechet_distance), ("kid", kernel_distance)):
        matrix = np.array([[distance(g, r) for r in real_a] for g in generated])
        diag = np.diag(matrix)
        off = matrix[~np.eye(len(matrix), dtype=bool)]
        floor = float(np.mean([distance(a, b) for a, b in zip(real_a, real_b, strict=True)]))
        summary[name] = {"diag_mean": float(diag.mean()), "offdiag_mean": float(off.mean()), "real_floor": floor,
                         "diag_below_row_offdiag": float(np.mean(diag < np.where(np.eye(len(matrix)), np.inf,
                                                                                  matrix).min(1)))}
        if name == "fid":
            summary[name]["ratio"] = float(diag.mean() / off.mean()) if off.mean() > 0 else None
            fid_matrix = matrix
    return summary, fid_matrix


def choose_films(splits: pd.DataFrame, config: GenerationConfig) -> dict[str, list[str]]:
    """Seen: `eval_seen_films` training films, unseen: `eval_unseen_films` generation-set films (seeded draw; an
    error when there is no unseen film)."""
    rng = np.random.default_rng(config.seed)
    pools = {SEEN: splits.loc[splits[SPLIT] == "train", FILM_ID], UNSEEN: splits.loc[splits[GENERATION_SET], FILM_ID]}
    counts = {SEEN: config.eval_seen_films, UNSEEN: config.eval_unseen_films}
    chosen = {name: sorted(rng.choice(sorted(pool), size=min(counts[name], len(pool)), replace=False).tolist())
              for name, pool in pools.items()}
    if not chosen[UNSEEN]:
        raise ValueError(f"{SPLITS_FILE}: no held-out films in the generation set to evaluate")
    return chosen


def label(film: str, conditions: Mapping[str, float], measured: Mapping[str, Mapping[str, float]]) -> str:
    """Row text: film, its conditions and the features measured on each image set."""
    cond = [f"{c} {conditions[c]:.3g}" for c in CONDITION_COLUMNS]
    lines = [film, *(f"{a:<28}{b}" for a, b in zip(cond[::2], cond[1::2]))]
    for which, values in measured.items():
        lines.append(f"{which}: S {values['orientation_order']:.2f}  d {values['diameter_nm']:.0f} nm  "
                     f"pore {values['pore_size_um']:.2f} µm")
    return "\n".join(lines)


def _design(ws: Workspace, gen: StructureGenerator, config: GenerationConfig, pixel_size_nm: float,
            plots_dir: Path) -> tuple[dict[str, Any], Path | None]:
    """A generated structure for the design stage's paper example (reports/design.json), when there is one."""
    path = ws.reports / DESIGN_REPORT
    example = json.loads(path.read_text()).get("paper_example", {}) if path.is_file() else {}
    conditions = example.get("conditions") if isinstance(example, Mapping) else None
    if not conditions:
        return {"skipped": f"no paper_example.conditions in {DESIGN_REPORT}"}, None
    frame = pd.DataFrame([conditions])
    images = gen.generate(frame, config.images_per_film, seed=config.seed)[0]
    measured = measure_crops(images, pixel_size_nm, config.mosaic_columns)
    plot = plot_strips([[images]], [label("design", frame.iloc[0], {"generated": measured})], ["generated"],
                       plots_dir / "design_structure.png")
    return {"conditions": {k: float(v) for k, v in conditions.items()}, "measured": _json_safe(measured)}, plot


def evaluate_generation(ws: Workspace, params: dict[str, Any], progress: bool = True
                        ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Run the evaluation; write reports/generation.json and the plots in reports/generation/."""
    config = section(params, "generation", GenerationConfig)
    gen = StructureGenerator.load(ws.models, ws.processed, config.device)
    gen.config = config  # sampling settings from the current parameters; architecture from the model folder
    data = ProcessedData.load(ws.processed)
    films = choose_films(pd.read_parquet(ws.processed / SPLITS_FILE), config)
    all_films = films[SEEN] + films[UNSEEN]
    rows = longitudinal(data.table[data.table[FILM_ID].isin(all_films)]).set_index(FILM_ID).loc[all_films]
    manifest = pd.read_parquet(ws.processed / PATCHES_FILE)
    pixel_size = manifest[manifest[FILM_ID].isin(all_films)].groupby(FILM_ID)["pixel_size_nm"].mean()
    n = config.images_per_film
    bank = PatchBank.load(ws.processed, all_films, per_film=2 * n)
    crop_rng = torch.Generator().manual_seed(config.seed)
    real = {f: random_crops(bank.pixels[bank.film_patches(f)], config.image_px, crop_rng)[:, 0].numpy()
            for f in all_films}
    start = time.perf_counter()
    cond = gen.condition_embeddings(rows.reset_index()[list(CONDITION_COLUMNS)])
    structures = gen.structure_embeddings(cond, n, seed=config.seed)
    generated = gen.render(structures.reshape(-1, structures.shape[-1]), seed=config.seed + 1)
    seconds_per_image = (time.perf_counter() - start) / len(generated)
    generated = dict(zip(all_films, generated.reshape(len(all_films), n, config.image_px, config.image_px)))

    device = gen.device
    feats = {f: {"generated": encoder_features(gen.sgpt, generated[f], gen.sgpt_image_size, device),
                 "a": encoder_features(gen.sgpt, real[f][: len(real[f]) // 2], gen.sgpt_image_size, device),
                 "b": encoder_features(gen.sgpt, real[f][len(real[f]) // 2:], gen.sgpt_image_size, device)}
             for f in all_films}
    measured = {f: {"generated": measure_crops(generated[f], pixel_size[f], config.mosaic_columns),
                    "real A": measure_crops(real[f][: len(real[f]) // 2], pixel_size[f], config.mosaic_columns),
                    "real B": measure_crops(real[f][len(real[f]) // 2:], pixel_size[f], config.mosaic_columns)}
                for f in all_films}
    plots_dir = ws.reports / GENERATION_PLOTS_DIR
    report: dict[str, Any] = {"fid": {}, "kid": {}, "feature_pearson": {}, "feature_pearson_ci95": {},
                              "feature_pearson_real_floor": {},
                              "films": films, "images_per_film": n, "image_px": config.image_px,
                              "features": "SGPT vision encoder output before the projector (image_pre)"}
    plots: dict[str, Path] = {}
    for which, group in films.items():
        report["feature_pearson"][which] = {k: pearson(*_against_real_a(measured, group, "generated", k))
                                            for k in FEATURES}
        report["feature_pearson_ci95"][which] = {k: pearson_ci95(*_against_real_a(measured, group, "generated", k))
                                                 for k in FEATURES}
        report["feature_pearson_real_floor"][which] = {k: pearson(*_against_real_a(measured, group, "real B", k))
                                                       for k in FEATURES}
        if len(group) < MIN_FILMS_FOR_FID:
            report["fid"][which] = report["kid"][which] = {"skipped": f"{len(group)} {which} film(s): no off-diagonal"}
            continue
        block, matrix = distance_block([feats[f]["generated"] for f in group], [feats[f]["a"] for f in group],
                                       [feats[f]["b"] for f in group])
        report["fid"][which], report["kid"][which] = block["fid"], block["kid"]
        plots[f"fid_{which}"] = plot_fid_heatmap(
            matrix, group, f"FID, {which} conditions: diagonal {block['fid']['diag_mean']:.2f}, off-diagonal "
            f"{block['fid']['offdiag_mean']:.2f}, real floor {block['fid']['real_floor']:.2f}",
            plots_dir / f"fid_{which}.png")
    report["prior"] = _prior_metrics(gen, data, films[UNSEEN], structures[len(films[SEEN]):], config)
    report["seconds_per_image"] = seconds_per_image
    generator_metrics = ws.reports / stage_report("generator")  # wall times stay out of the model folder
    report["decoder_train_seconds"] = (json.loads(generator_metrics.read_text()).get("decoder_train_seconds")
                                       if generator_metrics.is_file() else None)
    report["measured"] = {f: {which: _json_safe(values) for which, values in sets.items()}
                          for f, sets in measured.items()}

    sheet = films[UNSEEN][: config.grid_films]
    plots["contact_sheet"] = plot_strips(
        [[real[f][:n], generated[f]] for f in sheet],
        [label(f, rows.loc[f], {"real": measured[f]["real A"], "gen": measured[f]["generated"]}) for f in sheet],
        ["real crops (unseen film)", "generated from its conditions"], plots_dir / "contact_sheet.png")
    example = films[UNSEEN][:EXAMPLE_ROWS]
    plots["generate_example"] = plot_strips(
        [[generated[f]] for f in example], [label(f, rows.loc[f], {"gen": measured[f]["generated"]}) for f in example],
        ["matmcl generate"], plots_dir / "generate_example.png")
    report["design"], design_plot = _design(ws, gen, config, float(pixel_size.mean()), plots_dir)
    if design_plot is not None:
        plots["design_structure"] = design_plot
    write_json(report, ws.reports / GENERATION_REPORT)
    return report, plots


def _prior_metrics(gen: StructureGenerator, data: ProcessedData, unseen: list[str], sampled: torch.Tensor,
                   config: GenerationConfig) -> dict[str, float]:
    """Mean cosine of sampled structure embeddings to each unseen film's true embedding (mean SGPT image embedding
    of its real patches), and of the nearest training film's true embedding (the baseline)."""
    train = GeneratorData.build(data, ("train",), gen.sgpt, gen.sgpt_image_size, config.images_per_film,
                                config.embed_batch_size, gen.device)
    held_out = GeneratorData.build(data, ("test",), gen.sgpt, gen.sgpt_image_size, 2 * config.images_per_film,
                                   config.embed_batch_size, gen.device)
    index = {f: i for i, f in enumerate(held_out.rows[FILM_ID])}
    true = torch.from_numpy(held_out.film_embeddings()[[index[f] for f in unseen]])
    cosine = (sampled * true[:, None]).sum(-1).mean().item()
    x_train = data.scaler.inputs(train.rows)
    x_unseen = data.scaler.inputs(held_out.rows.set_index(FILM_ID).loc[unseen].reset_index())
    nearest = np.argmin(((x_unseen[:, None] - x_train[None]) ** 2).sum(-1), axis=1)
    baseline = F.cosine_similarity(torch.from_numpy(train.film_embeddings()[nearest]), true).mean().item()
    return {"cosine_to_true": cosine, "baseline_cosine": baseline, "n_films": len(unseen)}
