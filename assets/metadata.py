"""Turn what a matmcl stage returns into Dagster metadata a person can read."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PREVIEW_PX = 900  # longest side of an embedded plot preview (the full-size file is linked beside it)


def image_preview(path: Path, max_px: int = PREVIEW_PX) -> dg.MetadataValue:
    """The image downscaled to `max_px` and embedded in Markdown as a base64 PNG."""
    with Image.open(path) as image:
        image.thumbnail((max_px, max_px))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})")


def _value(value: Any) -> dg.MetadataValue:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, Path):
        return dg.MetadataValue.path(str(value.resolve()))
    if value is None:
        return dg.MetadataValue.null()
    if isinstance(value, str):
        return dg.MetadataValue.text(value)
    return dg.MetadataValue.json(value)


def stage_metadata(result: Mapping[str, Any], prefix: str = "") -> dict[str, dg.MetadataValue]:
    """Flatten a stage's result: nested dicts become dotted keys, numbers stay numbers (the UI plots them across
    materializations), and an image becomes an inline preview plus `<name>_path` to the file."""
    metadata: dict[str, dg.MetadataValue] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            metadata.update(stage_metadata(value, f"{name}."))
        elif isinstance(value, Path) and value.suffix.lower() in IMAGE_SUFFIXES:
            metadata[name] = image_preview(value)
            metadata[f"{name}_path"] = _value(value)
        else:
            metadata[name] = _value(value)
    return metadata


def stage_result(result: Mapping[str, Any]) -> dg.MaterializeResult:
    """The MaterializeResult of an asset whose stage wrote its files itself (no IO manager involved)."""
    return dg.MaterializeResult(metadata=stage_metadata(result))
