"""Stage `retrieval`: the served gallery index (models/gallery) and the cross-modal retrieval evaluation on each CV
fold's unseen test films (reports/retrieval.json, reports/retrieval/*.png; docs/retrieval.md)."""

from __future__ import annotations

from typing import Any

from matmcl import artifacts as a
from matmcl.atomic import write_json
from matmcl.lineage import LineageError, data_version
from matmcl.retrieval.config import RetrievalConfig
from matmcl.retrieval.embeddings import ROLE_TEST, read_cv_embeddings
from matmcl.retrieval.evaluation import DIRECTIONS, METHODS, evaluate_retrieval, example_rows, latency_ms_per_query
from matmcl.retrieval.gallery import build_gallery
from matmcl.retrieval.plots import TITLES, plot_query_grid, plot_topk_curves
from matmcl.schema import FILM_ID
from matmcl.stages.context import StageContext, StageResult, timed
from matmcl.training.data import PatchBank, ProcessedData

GRID_RESULTS = 5  # results shown per query in the example grids


def retrieval(ctx: StageContext) -> StageResult:
    """Build models/gallery with the served SGPT, evaluate retrieval on the CV folds' test films against the
    similarity and random baselines, benchmark the query latency; write reports/retrieval.json, retrieval_stage.json
    and the plots."""
    config = ctx.config("retrieval", RetrievalConfig)
    ws = ctx.workspace
    plots_dir = ws.reports / a.RETRIEVAL_PLOTS_DIR
    metrics: dict[str, Any] = {}
    with timed(metrics):
        rows, table, image, version = read_cv_embeddings(ws.models / a.CV_EMBEDDINGS)
        current = data_version(ws.processed)
        if version != current:
            raise LineageError(f"{ws.models / a.CV_EMBEDDINGS} was computed on data {version}, but the workspace has "
                               f"{current}: rerun `matmcl evaluate`")
        gallery, lineage = build_gallery(ws.processed, ws.models / a.SGPT_DIR, config)
        lineage = gallery.save(ws.models / a.GALLERY_DIR, lineage)
        processed = ProcessedData.load(ws.processed)
        report = evaluate_retrieval(rows, table, image, processed.features, config.features, config.top_k,
                                    config.bootstrap, config.seed)
        report["latency_ms_per_query"] = latency_ms_per_query(config.latency_sizes, gallery.image.shape[1],
                                                              max(config.top_k), config.latency_queries, config.seed)
        report["served_gallery"] = {"n_films": len(gallery), "films": config.gallery_films,
                                    "fingerprint": lineage.fingerprint, "sgpt": lineage.parents[a.SGPT_DIR]}
        write_json(report, ws.reports / a.RETRIEVAL_REPORT)
        plots = {"topk_curve": plot_topk_curves({d: report["curve"][d] for d in DIRECTIONS}, report["curve"]["k"],
                                                plots_dir / "topk_curve.png")}
        test_films = rows.loc[rows["role"] == ROLE_TEST, FILM_ID].unique().tolist()
        bank = PatchBank.load(ws.processed, test_films, 1)
        patches = {f: bank.pixels[bank.start[f], 0].numpy() for f in test_films}
        for direction, grid in example_rows(rows, table, image, patches, config.example_queries, GRID_RESULTS,
                                            config.seed).items():
            plots[f"examples_{direction}"] = plot_query_grid(
                grid, f"{TITLES[direction]}: top-{GRID_RESULTS} among the fold's unseen test films (true film framed)",
                plots_dir / f"examples_{direction}.png")
        for direction in DIRECTIONS:
            for method in METHODS:
                entry = report[direction][method]
                metrics[f"{direction}_{method}"] = {k: entry[k] for k in (*(f"top{k}" for k in config.top_k), "mrr")}
        metrics["feature_distance_top1"] = report["feature_distance_top1"]
        metrics["gallery_size"] = report["gallery_size"]
        metrics["latency_ms_per_query"] = report["latency_ms_per_query"]
        metrics["served_gallery_films"] = len(gallery)
        metrics["data_version"] = current
    ctx.write_metrics("retrieval_stage", metrics)
    return StageResult(metrics, plots)
