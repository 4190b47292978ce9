"""`matmcl measure`: structural features of SEM frames (the measurement code is imported only when it runs)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def _info_bar(value: str) -> str | int:
    if value in ("auto", "none"):
        return value
    try:
        rows = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--info-bar takes auto, none or a row count, not {value!r}") from None
    if rows < 0:
        raise argparse.ArgumentTypeError(f"--info-bar rows must be >= 0, got {rows}")
    return rows


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `matmcl measure`: frames, pixel size, info bar handling, JSON output."""
    parser.add_argument("frames", nargs="+", metavar="FRAME", help="SEM image files (TIFF, PNG, JPEG, ...)")
    parser.add_argument("--pixel-size-nm", type=float,
                        help="pixel size in nm (overrides the TIFF metadata; required for frames without it)")
    parser.add_argument("--info-bar", type=_info_bar, default="auto", metavar="auto|none|ROWS",
                        help="info bar at the bottom: detect it (auto, default), none, or drop this many rows")
    parser.add_argument("--json", action="store_true", help="print one JSON object per frame instead of a table")


def _clean(value: Any) -> Any:
    """JSON-safe value: NaN → None, numpy scalars → Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_measure(args: argparse.Namespace) -> int:
    """Measure each frame; print a table (or JSON lines); warnings go to stderr."""
    from matmcl.features.measure import MEASURE_KEYS, measure_frame, tiff_pixel_size_nm
    from matmcl.rawdata import RawDataError, load_sem_image

    if args.pixel_size_nm is not None and not args.pixel_size_nm > 0:
        raise ValueError(f"--pixel-size-nm must be > 0, got {args.pixel_size_nm}")
    results = []
    for frame in map(Path, args.frames):
        if not frame.is_file():
            raise FileNotFoundError(f"{frame}: image file not found")
        pixel_size = args.pixel_size_nm or tiff_pixel_size_nm(frame)
        if pixel_size is None:
            raise ValueError(f"{frame}: no pixel size in the file's metadata; give --pixel-size-nm")
        try:
            image = load_sem_image(frame)
        except RawDataError as exc:
            raise ValueError(str(exc)) from exc
        measured = measure_frame(image, pixel_size, args.info_bar)
        results.append({"frame": str(frame), "pixel_size_nm": pixel_size,
                        **{k: _clean(v) for k, v in measured.items()}})
    if args.json:
        for row in results:
            print(json.dumps(row, ensure_ascii=False))
    else:
        columns = ["frame", "pixel_size_nm", *(k for k in MEASURE_KEYS if k != "quality")]
        print("\t".join(columns))
        for row in results:
            print("\t".join(_format(row[c]) for c in columns))
    if not getattr(args, "quiet", False):
        for row in results:
            for warning in row["quality"]:
                print(f"{row['frame']}: {warning}", file=sys.stderr)
    return 0
