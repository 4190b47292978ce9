"""Stages `descriptors` and `multiscale`: the multiscale descriptors of every film (fiber-network mechanics per SEM
frame, molecular descriptors of its polymer) and the multiscale fusion property model (GFM / MAFM fusion, one-scale
ablations, film-level CV; docs/multiscale.md)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from matmcl.artifacts import CONDITIONS_CSV, FIBER_NETWORKS_FILE, MOLECULAR_DESCRIPTORS_FILE, NETWORK_DESCRIPTORS_FILE
from matmcl.atomic import write_parquet
from matmcl.stages.context import StageContext, StageResult, timed


def descriptors(ctx: StageContext) -> StageResult:
    """Network descriptors of every SEM frame's fiber network (from processed/fiber_networks.parquet, written by
    the features stage; processed/network_descriptors.parquet) and molecular descriptors
    of every film's polymer (processed/molecular_descriptors.parquet); counts and timing in
    reports/descriptors.json."""
    from matmcl.multiscale.config import MultiscaleConfig
    from matmcl.multiscale.descriptors import NetworkConfig
    from matmcl.multiscale.extract import POLYMER, film_polymers, frame_network_descriptors
    from matmcl.multiscale.molecular import MOLECULAR_KEYS, MolecularConfig, film_molecular_descriptors
    from matmcl.schema import FILM_ID

    metrics: dict[str, Any] = {}
    with timed(metrics):
        ws, cfg = ctx.workspace, ctx.config("multiscale", MultiscaleConfig)
        networks = pd.read_parquet(ws.processed / FIBER_NETWORKS_FILE)
        network = frame_network_descriptors(networks, NetworkConfig(**cfg.network), cfg.workers, ctx.progress)
        # the per-frame wall time goes to the metrics only: the data file must be the same on every run
        write_parquet(network.drop(columns="seconds"), ws.processed / NETWORK_DESCRIPTORS_FILE)
        start = time.perf_counter()
        films = film_polymers(ws.raw / CONDITIONS_CSV)
        names = sorted(films[POLYMER].unique())
        molecular = films.merge(film_molecular_descriptors(names, MolecularConfig(**cfg.molecular)), on=POLYMER,
                                how="left")[[FILM_ID, POLYMER, *MOLECULAR_KEYS]]
        write_parquet(molecular, ws.processed / MOLECULAR_DESCRIPTORS_FILE)
        metrics["seconds_molecular"] = round(time.perf_counter() - start, 2)
        measured = network["error"] == ""
        metrics.update(
            n_frames=len(network), n_films=int(network[FILM_ID].nunique()), n_frames_failed=int((~measured).sum()),
            n_frames_without_load_path_L=int((network["stiffness_L_rel"] <= 0).sum()),
            n_frames_without_load_path_T=int((network["stiffness_T_rel"] <= 0).sum()),
            seconds_per_frame_mean=float(np.nanmean(network["seconds"])), polymers=names,
            n_polymers=len(names), workers=cfg.workers)
    metrics["seconds_network"] = round(metrics["seconds"] - metrics["seconds_molecular"], 2)
    ctx.write_metrics("descriptors", metrics)
    return StageResult(metrics)


def multiscale(ctx: StageContext) -> StageResult:
    """Evaluate the multiscale fusion variants and one-scale ablations on the film-level CV protocol, fit the chosen
    design on all films into models/multiscale; write reports/multiscale.json, its plots and
    reports/multiscale_stage.json (timing, choice, headline R² per variant)."""
    from matmcl.artifacts import MULTISCALE_REPORT
    from matmcl.atomic import write_json
    from matmcl.multiscale.evaluate import run_multiscale

    metrics: dict[str, Any] = {}
    with timed(metrics):
        report, plots = run_multiscale(ctx.workspace, ctx.params, ctx.run_id, ctx.progress)
        write_json(report, ctx.workspace.reports / MULTISCALE_REPORT)
        metrics.update({key: report[key] for key in ("chosen_design", "n_films", "cv_seconds", "data_version",
                                                     "fingerprint", "mlflow_run_id")})
        metrics["r2_mean"] = {variant: {prop: entry["r2_mean"] for prop, entry in per_property.items()}
                              for variant, per_property in report["variants"].items()}
    ctx.write_metrics("multiscale_stage", metrics)
    return StageResult(metrics, plots)
