"""How much of the design verification's miss is the lab's frame-to-frame scatter: the structure verification of
the design stage repeated with 1, 2 and 4 SEM frames measured per film (targets and designs alike).

Reads the served design proxy (models/design, `matmcl inverse-design`) and the workspace's processed films, and runs
`matmcl.design.pipeline.verify_structure` exactly as the design stage does, changing only `frames_per_design`. The
oracle row (the hidden conditions themselves, made and measured again) is the ceiling any design method can reach
at that number of frames: with one 640 x 480 frame even the true conditions give all three features within 10 %
only rarely, because a frame samples few fibers (orientation order varies ~8 % between frames of one film in the
ground truth). Writes reports/bench_design_frames.json; nothing here is fitted or tuned.

    python benchmarks/bench_design_frames.py [--workspace .] [--frames 1 2 4] [--targets 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from matmcl.atomic import write_json
from matmcl.config import Workspace, WorkspaceConfig, load_params, section
from matmcl.design.pipeline import TrainingFilms, lab_protocol, load_designer, verify_structure

METHODS = ("method", "lookup", "random_search", "oracle")


def run(workspace: Workspace, params: dict, frame_counts: list[int], n_targets: int | None, workers: int | None,
        progress: bool = True) -> dict:
    """Success rate and median relative error of every method for each number of frames per film."""
    proxy, config, scaler = load_designer(workspace.models, workspace.processed)
    if n_targets:
        config = dataclasses.replace(config, n_targets=n_targets)
    films = TrainingFilms.load(workspace.processed, scaler).subset(("train", "val"))
    protocol = lab_protocol(params, config)
    if workers:
        protocol = dataclasses.replace(protocol, workers=workers)
    report: dict = {"n_targets": config.n_targets, "tolerance": config.tolerance,
                    "frame_px": [protocol.width_px, protocol.height_px], "film_effects": config.film_effects,
                    "by_frames": {}}
    for frames in frame_counts:
        start = time.perf_counter()
        section_, _, _ = verify_structure(proxy, scaler, films, config, dataclasses.replace(protocol, frames=frames),
                                          progress)
        scores = {"method": section_, **section_["baselines"]}
        report["by_frames"][str(frames)] = {
            **{m: {k: scores[m][k] for k in ("success_rate", "median_rel_error", "within_tolerance_by_feature")}
               for m in METHODS},
            "method_vs": section_["method_vs"], "seconds": round(time.perf_counter() - start, 1)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("."), help="workspace after `matmcl inverse-design`")
    parser.add_argument("--params", type=Path, default=None, help="params file (default: <workspace>/params.yaml)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4], help="frames measured per film")
    parser.add_argument("--targets", type=int, default=0, help="lab-made targets (default: design.n_targets)")
    parser.add_argument("--workers", type=int, default=0, help="processes (default: features.workers)")
    args = parser.parse_args()
    params = load_params(args.params or args.workspace / "params.yaml")
    workspace = Workspace(args.workspace, section(params, "workspace", WorkspaceConfig))
    report = run(workspace, params, args.frames, args.targets or None, args.workers or None)
    path = write_json(report, workspace.reports / "bench_design_frames.json")
    for frames, entry in report["by_frames"].items():
        print(f"{frames} frame(s): " + ", ".join(f"{m} {entry[m]['success_rate']:.2f}" for m in METHODS)
              + f"  ({entry['seconds']} s)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
