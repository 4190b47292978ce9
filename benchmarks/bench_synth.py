"""Time the virtual lab on a profile's dataset and write reports/synth.json (seconds, size on disk, counts).

Usage: python benchmarks/bench_synth.py [--profile default] [--out reports/synth.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from matmcl.atomic import write_json
from matmcl.config import SynthConfig, load_params, section
from matmcl.lab.generate import generate_dataset

TARGET_SECONDS = 180.0  # issue 2: the default dataset in under 3 minutes on 2 cores


def folder_bytes(folder: Path) -> int:
    """Total size of the files under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/synth.json")
    args = parser.parse_args()
    cfg = section(load_params(args.params, args.profile), "synth", SynthConfig)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = generate_dataset(Path(tmp) / "raw", cfg, args.profile, progress=False)
        seconds = time.perf_counter() - start
        size = folder_bytes(Path(tmp) / "raw")
    result = {
        "profile": args.profile,
        "seconds": round(seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS,
        "size_mb": round(size / 1e6, 1),
        "counts": manifest["counts"],
        "stage_seconds": manifest["seconds"],
        "workers": cfg.workers,
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "machine": platform.platform(),
    }
    write_json(result, args.out)
    print(result)


if __name__ == "__main__":
    main()
