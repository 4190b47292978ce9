"""The workspace resource: where the assets read and write, and with which parameters."""

from __future__ import annotations

from typing import Any

import dagster as dg

from matmcl.artifacts import RAW_INDEX_FILES
from matmcl.hashing import hash_files
from matmcl.stages.context import StageContext

FINGERPRINT_KEY = "raw_fingerprint"  # metadata key of the fingerprint on the virtual lab's materializations


class WorkspaceResource(dg.ConfigurableResource):
    """A matmcl workspace: its root folder, the parameter file and the profile (None: the file's `profile`)."""

    root: str = "."
    params_file: str | None = None
    profile: str | None = None
    progress: bool = False

    def context(self, run_id: str | None = None, **overrides: dict[str, Any]) -> StageContext:
        """The StageContext the matmcl stages take, for pipeline run `run_id`; `overrides` replace keys of params
        sections (e.g. synth={"n_films": 12})."""
        return StageContext.load(self.root, self.params_file, self.profile, self.progress, overrides, run_id)

    def raw_fingerprint(self) -> str | None:
        """Hash of the raw index tables (conditions, frames, curves); None while any of them is missing."""
        raw = self.context().workspace.raw
        if not all((raw / name).is_file() for name in RAW_INDEX_FILES):
            return None
        return hash_files((name, raw / name) for name in RAW_INDEX_FILES)
