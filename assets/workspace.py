"""The workspace resource: where the assets read and write, and with which parameters."""

from __future__ import annotations

import hashlib
from typing import Any

import dagster as dg

from matmcl.config import deep_merge
from matmcl.stages.context import StageContext

# The raw tables whose content identifies a raw dataset (what the raw-data sensor watches).
RAW_INDEX_FILES = ("conditions.csv", "sem/frames.csv", "tensile/curves.csv")
FINGERPRINT_KEY = "raw_fingerprint"  # metadata key of the fingerprint on raw_lab_data materializations


class WorkspaceResource(dg.ConfigurableResource):
    """A matmcl workspace: its root folder, the parameter file and the profile (None: the file's `profile`)."""

    root: str = "."
    params_file: str | None = None
    profile: str | None = None
    progress: bool = False

    def context(self, **overrides: dict[str, Any]) -> StageContext:
        """The StageContext the matmcl stages take; `overrides` replace keys of params sections (e.g. synth={...})."""
        ctx = StageContext.load(self.root, self.params_file, self.profile, self.progress)
        if not overrides:
            return ctx
        return StageContext(ctx.workspace, deep_merge(ctx.params, overrides), ctx.progress)

    def raw_fingerprint(self) -> str | None:
        """Hash of the raw index tables (conditions, frames, curves); None while any of them is missing."""
        raw = self.context().workspace.raw
        paths = [raw / name for name in RAW_INDEX_FILES]
        if not all(path.is_file() for path in paths):
            return None
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]
