"""Tests of cross-modal retrieval: the top-k index, the metrics and the paper's similarity baseline (hand-computed),
the CV embedding hook, the gallery (lineage, adding films), an aligned tiny model retrieving its training pairs
perfectly, the stage's report and the `matmcl retrieve` command's errors."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_training import PRETRAIN, REPO, make_processed

from matmcl.artifacts import CV_EMBEDDINGS, GALLERY_DIR, RETRIEVAL_REPORT, SGPT_DIR
from matmcl.lineage import LineageError, data_version
from matmcl.retrieval.config import RetrievalConfig
from matmcl.retrieval.embeddings import fold_embeddings, read_cv_embeddings, write_cv_embeddings
from matmcl.retrieval.evaluation import evaluate_retrieval, hits, rank_fold, reciprocal_ranks
from matmcl.retrieval.gallery import Gallery, Retriever, build_gallery
from matmcl.retrieval.index import normalize, rank_of, top_k
from matmcl.predict_cli import parse_conditions
from matmcl.retrieve_cli import add_retrieve_arguments, cmd_retrieve
from matmcl.schema import CONDITION_COLUMNS, FILM_ID
from matmcl.sem.histmatch import save_reference
from matmcl.stages.context import StageContext
from matmcl.stages.retrieval import retrieval
from matmcl.training.config import EvaluationConfig, PropertyConfig
from matmcl.training.cv import cross_validate
from matmcl.training.data import PatchBank, ProcessedData
from matmcl.training.pretrain import load_sgpt, pretrain

pytestmark = pytest.mark.usefixtures("one_thread")
ALIGNED = dataclasses.replace(PRETRAIN, epochs=100, lr=1e-2, batch_size=20)  # full batch: its 10 training films align
CONFIG = RetrievalConfig(gallery_films="gallery", patches_per_film=0, bootstrap=50, latency_sizes=(100, 1000),
                         latency_queries=5, example_queries=2)


# ---------------------------------------------------------------- index and metrics


def test_top_k_agrees_with_a_full_sort_and_ranks_count_better_items():
    rng = np.random.default_rng(0)
    gallery, queries = normalize(rng.normal(size=(50, 8))), normalize(rng.normal(size=(3, 8)))
    index, scores = top_k(queries, gallery, 5)
    full = np.argsort(-(queries @ gallery.T), axis=1)[:, :5]
    np.testing.assert_array_equal(index, full)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ gallery.T, full, axis=1), rtol=1e-6)
    assert top_k(queries[0], gallery, 500)[0].shape == (1, 50)  # k capped at the gallery size
    np.testing.assert_array_equal(rank_of(np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]]), np.array([0, 2])), [1, 3])


def test_random_baseline_is_the_expected_value():
    n = np.array([4, 4])
    np.testing.assert_allclose(hits(None, n, 1), 0.25)
    np.testing.assert_allclose(hits(None, n, 10), 1.0)
    np.testing.assert_allclose(reciprocal_ranks(None, n), (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    np.testing.assert_allclose(reciprocal_ranks(np.array([1, 4]), n), [1.0, 0.25])


def _unit(degrees: float) -> list[float]:
    return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]


def hand_fold() -> tuple[dict, dict]:
    """Two training films (standardized conditions −1 and +1 in every column; structures e1, e2) and three test
    films (standardized conditions −0.8, +0.8, −0.1; structures at 10°, 80° and 30°)."""
    train = {"conditions": np.repeat([[0.0], [2.0]], 6, axis=1), "image": np.array([_unit(0), _unit(90)])}
    train["table"] = train["image"]
    test = {"conditions": np.repeat([[0.2], [1.8], [0.9]], 6, axis=1),
            "image": np.array([_unit(10), _unit(80), _unit(30)])}
    test["table"] = test["image"]  # SGPT perfectly aligned on these films
    return train, test


def test_similarity_baseline_matches_a_hand_computation():
    train, test = hand_fold()
    ranks = rank_fold(train, test)
    # cond→struct: nearest training conditions T0, T1, T0 → its structure e1, e2, e1 → the test structures ranked by
    # cosine to it: e1 ranks 10° > 30° > 80°, so the 30° film comes second.
    np.testing.assert_array_equal(ranks["cond_to_struct"].ranks["similarity"], [1, 1, 2])
    # struct→cond: most similar training structure e1, e2, e1 → its conditions (−1, +1, −1) → test conditions by
    # distance: from −1: −0.8, −0.1, +0.8, so the third film comes second.
    np.testing.assert_array_equal(ranks["struct_to_cond"].ranks["similarity"], [1, 1, 2])
    for direction in ranks.values():
        np.testing.assert_array_equal(direction.ranks["matmcl"], [1, 1, 1])


def test_pooled_report_has_the_documented_numbers():
    train, test = hand_fold()
    rows = pd.DataFrame({"fold": 0, "repeat": 0, FILM_ID: ["T0", "T1", "G0", "G1", "G2"],
                         "role": ["train"] * 2 + ["test"] * 3})
    rows[list(CONDITION_COLUMNS)] = np.vstack([train["conditions"], test["conditions"]])
    table = np.vstack([train["table"], test["table"]])
    features = pd.DataFrame({FILM_ID: ["G0", "G1", "G2"], "orientation_order": [0.0, 1.0, 2.0]})
    report = evaluate_retrieval(rows, table, table, features, ["orientation_order"], (1, 5), 20, 0)
    assert report["gallery_size"] == 3 and report["n_queries"] == 3
    for direction in ("cond_to_struct", "struct_to_cond"):
        assert report[direction]["matmcl"]["top1"] == 1.0 and report[direction]["matmcl"]["mrr"] == 1.0
        assert report[direction]["similarity"]["top1"] == pytest.approx(2 / 3)
        assert report[direction]["similarity"]["mrr"] == pytest.approx((1 + 1 + 0.5) / 3)
        assert report[direction]["random"]["top1"] == pytest.approx(1 / 3)
        assert report[direction]["random"]["top5"] == 1.0
        assert report[direction]["matmcl_minus_similarity"]["mrr"] == pytest.approx(1 - 2.5 / 3)
        lo, hi = report[direction]["similarity"]["top5_ci95"]
        assert lo <= report[direction]["similarity"]["top5"] <= hi
        distances = report["feature_distance_top1"][direction]
        assert distances["matmcl"] == 0.0
        # z-scored feature of G0..G2: −1.22, 0, 1.22; the similarity baseline's miss puts G0 first for G2
        z = np.sqrt(1.5)
        assert distances["similarity"] == pytest.approx(2 * z / 3)
        assert distances["random"] == pytest.approx(np.mean([3 * z, 2 * z, 3 * z]) / 3)
    assert report["curve"]["k"] == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- models


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A processed folder whose `gallery` films are the 10 training films, and a tiny SGPT aligned on them."""
    root = tmp_path_factory.mktemp("ws")
    processed = make_processed(root / "data" / "processed")
    splits = pd.read_parquet(processed / "splits.parquet")
    splits.assign(gallery=splits["split"] == "train").to_parquet(processed / "splits.parquet", index=False)
    pretrain(processed, ALIGNED, root / "models" / SGPT_DIR, progress=False)
    gallery, lineage = build_gallery(processed, root / "models" / SGPT_DIR, CONFIG)
    gallery.save(root / "models" / GALLERY_DIR, lineage)
    save_reference(np.ones(256, dtype=np.int64), processed / "reference_histogram.json")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


@pytest.fixture(scope="module")
def retriever(workspace: Path) -> Retriever:
    return Retriever.load(workspace / "models", workspace / "data" / "processed")


def training_films(workspace: Path) -> tuple[pd.DataFrame, list[list[np.ndarray]]]:
    data = ProcessedData.load(workspace / "data" / "processed")
    films = data.rows(["train"]).drop_duplicates(FILM_ID).reset_index(drop=True)
    bank = PatchBank.load(data.directory, films[FILM_ID].tolist())
    return films, [[bank.pixels[i, 0].numpy() for i in bank.film_patches(f)] for f in films[FILM_ID]]


def test_aligned_model_retrieves_its_training_pairs_perfectly(workspace: Path, retriever: Retriever):
    films, patches = training_films(workspace)
    assert len(retriever.gallery) == 10 and set(retriever.gallery.films[FILM_ID]) == set(films[FILM_ID])
    by_conditions = retriever.retrieve_structures(films[list(CONDITION_COLUMNS)], 3)
    top1 = by_conditions[by_conditions["rank"] == 1]
    assert top1[FILM_ID].tolist() == films[FILM_ID].tolist()  # conditions → own structure, top-1 = 1.0
    by_structure = retriever.retrieve_conditions(patches, 3)
    assert by_structure.loc[by_structure["rank"] == 1, FILM_ID].tolist() == films[FILM_ID].tolist()
    assert (np.diff(by_structure["similarity"].to_numpy().reshape(-1, 3), axis=1) <= 0).all()
    assert {"diameter_nm", "orientation_order", *CONDITION_COLUMNS} <= set(by_structure.columns)


def test_a_gallery_of_another_sgpt_is_refused(workspace: Path):
    with pytest.raises(LineageError, match="rerun `matmcl retrieval`"):
        Gallery.load(workspace / "models" / GALLERY_DIR, sgpt_fingerprint="0" * 16)


def test_user_films_are_added_saved_and_retrieved(workspace: Path, retriever: Retriever, tmp_path: Path):
    films, patches = training_films(workspace)
    conditions = films[list(CONDITION_COLUMNS)].iloc[[0]]
    local = Retriever.load(workspace / "models", workspace / "data" / "processed")
    local.add_films(["MY001"], conditions, [patches[0]])
    local.save_gallery(tmp_path / "mine")
    reloaded = Retriever.load(workspace / "models", workspace / "data" / "processed", tmp_path / "mine")
    assert len(reloaded.gallery) == 11 and reloaded.gallery.films["source"].iloc[-1] == "user"
    found = reloaded.retrieve_structures(conditions, 2)[FILM_ID].tolist()
    assert set(found) == {films[FILM_ID].iloc[0], "MY001"}  # the copy and its original rank first
    with pytest.raises(ValueError, match="already in the gallery"):
        reloaded.add_films(["MY001"], conditions, [patches[0]])
    assert len(retriever.gallery) == 10  # the served gallery is untouched


def test_bad_queries_give_clear_errors(retriever: Retriever):
    with pytest.raises(ValueError, match="missing condition column"):
        retriever.retrieve_structures(pd.DataFrame({"flow_rate_ml_h": [0.4]}), 3)
    with pytest.raises(ValueError, match="got 2 of the 6 conditions; missing concentration_wt_pct"):
        parse_conditions("flow_rate_ml_h=0.4, voltage_kv=16")
    with pytest.raises(ValueError, match="unknown condition 'speed'"):
        parse_conditions("speed=3")
    with pytest.raises(ValueError, match="2-D patches"):
        retriever.retrieve_conditions([[np.zeros((4, 4, 3), np.uint8)]], 3)


def _retrieve(workspace: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_retrieve_arguments(parser)
    args = parser.parse_args(argv)
    args.workspace, args.params, args.profile = str(workspace), str(workspace / "params.yaml"), None
    return cmd_retrieve(args)


def test_retrieve_command_prints_ranked_films_and_writes_a_grid(workspace: Path, tmp_path: Path, capsys):
    films, _ = training_films(workspace)
    first = films.iloc[0]
    query = ",".join(f"{c}={first[c]}" for c in CONDITION_COLUMNS)
    assert _retrieve(workspace, "--conditions", query, "--top-k", "2", "--grid", str(tmp_path / "grid.png")) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert out[FILM_ID].iloc[0] == first[FILM_ID] and out["rank"].tolist() == [1, 2]
    assert Image.open(tmp_path / "grid.png").size[0] > 0
    frame = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 80), dtype=np.uint8)).save(frame)
    assert _retrieve(workspace, "--image", str(frame), "--info-bar-px", "10", "--pixel-size-nm", "20", "--top-k", "4",
                     "--grid", str(tmp_path / "g2.png")) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == 4
    (tmp_path / "frame.xyz").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="unknown image format '.xyz'"):
        _retrieve(workspace, "--image", str(tmp_path / "frame.xyz"))
    with pytest.raises(ValueError, match="got 1 of the 6 conditions"):
        _retrieve(workspace, "--conditions", "flow_rate_ml_h=0.4")
    with pytest.raises(ValueError, match="give one query"):
        _retrieve(workspace)
    with pytest.raises(ValueError, match="which `matmcl retrieval` rebuilds"):
        _retrieve(workspace, "--add", "MY002", "--conditions", query, "--image", str(frame), "--info-bar-px", "10",
                  "--pixel-size-nm", "20")
    assert _retrieve(workspace, "--add", "MY002", "--conditions", query, "--image", str(frame), "--info-bar-px", "10",
                     "--pixel-size-nm", "20", "--save-gallery", str(tmp_path / "mine")) == 0
    assert _retrieve(workspace, "--conditions", query, "--gallery", str(tmp_path / "mine"), "--top-k", "50",
                     "--grid", str(tmp_path / "g3.png")) == 0
    assert "MY002" in set(pd.read_csv(io.StringIO(capsys.readouterr().out))[FILM_ID])


# ---------------------------------------------------------------- CV hook and stage


def test_cross_validation_stores_each_folds_film_embeddings(workspace: Path):
    processed = workspace / "data" / "processed"
    cv = cross_validate(processed, None, dataclasses.replace(PRETRAIN, epochs=1),
                        PropertyConfig(variants=("ridge_conditions",), seeds=(0,), fusion_patches=2, device="cpu"),
                        EvaluationConfig(folds=2, bootstrap=0, learning_curve=(), workers=1), progress=False)
    emb = cv["embeddings"]
    assert sorted(np.unique(emb["fold"])) == [0, 1]
    for fold in (0, 1):
        test = emb[FILM_ID][(emb["fold"] == fold) & (emb["role"] == "test")]
        train = emb[FILM_ID][(emb["fold"] == fold) & (emb["role"] == "train")]
        assert len(test) and len(train) and not set(test) & set(train)
    assert sorted(emb[FILM_ID][emb["role"] == "test"]) == sorted(set(emb[FILM_ID][emb["role"] == "test"]))
    np.testing.assert_allclose(np.linalg.norm(emb["image"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb["table"], axis=1), 1.0, rtol=1e-5)
    assert emb["conditions"].shape == (len(emb[FILM_ID]), 6)


def test_stage_writes_gallery_report_and_plots(workspace: Path, tmp_path: Path):
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "data" / "processed").symlink_to(workspace / "data" / "processed")
    (root / "models").mkdir()
    (root / "models" / SGPT_DIR).symlink_to(workspace / "models" / SGPT_DIR)
    processed = ProcessedData.load(workspace / "data" / "processed")
    sgpt, config = load_sgpt(workspace / "models" / SGPT_DIR)
    ids = processed.table[FILM_ID].unique()
    bank = PatchBank.load(processed.directory, ids.tolist())
    parts = [fold_embeddings(sgpt, config.image_size, processed.scaler, processed.table, bank, ids[10:], ids[:10], 0,
                             0, 64),
             fold_embeddings(sgpt, config.image_size, processed.scaler, processed.table, bank, ids[:10], ids[10:], 1,
                             0, 64)]
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    write_cv_embeddings(arrays, data_version(processed.directory), root / "models" / CV_EMBEDDINGS)
    assert read_cv_embeddings(root / "models" / CV_EMBEDDINGS)[0].shape[0] == 40
    ctx = StageContext.load(root, REPO / "params.yaml", "default", progress=False,
                            overrides={"retrieval": {k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in dataclasses.asdict(CONFIG).items()}})
    result = retrieval(ctx)
    report = json.loads((root / "reports" / RETRIEVAL_REPORT).read_text())
    for direction in ("cond_to_struct", "struct_to_cond"):
        for method in ("matmcl", "similarity", "random"):
            assert {"top1", "top5", "top10", "mrr", "top5_ci95"} <= set(report[direction][method])
        assert report[direction]["random"]["top1"] == pytest.approx(0.1)
    assert report["gallery_size"] == 10 and set(report["latency_ms_per_query"]) == {"100", "1000"}
    assert set(report["feature_distance_top1"]["cond_to_struct"]) == {"matmcl", "similarity", "random"}
    assert report["served_gallery"]["n_films"] == 10 and (root / "models" / GALLERY_DIR / "lineage.json").is_file()
    assert all(Path(p).is_file() for p in result.plots.values()) and len(result.plots) == 3
    # embeddings of other data are refused
    write_cv_embeddings(arrays, "0" * 16, root / "models" / CV_EMBEDDINGS)
    with pytest.raises(LineageError, match="rerun `matmcl evaluate`"):
        retrieval(ctx)
