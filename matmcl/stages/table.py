"""The stage table: every pipeline stage, registered once.

A row names the stage, the library function that does the work (`fn(ctx: StageContext) -> StageResult`), the
artifacts it reads and writes, the params.yaml sections it reads, its Dagster group and kinds, its help text and
the CLI options that override parameters. Everything else is derived from this table: the `matmcl` subcommands,
the order of `matmcl run`, the Dagster assets and their dependencies (assets/stages.py), and dvc.yaml with each
stage's code dependencies (`matmcl dvc-yaml`, matmcl.dvcgen). Adding a stage = one function + one row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from matmcl import artifacts as a
from matmcl.codebase import code_version, import_closure
from matmcl.config import Workspace

# Kinds of outputs: DVC-cached data, data kept while the stage runs (DVC must not delete it first: the stage checks
# or resumes it), metrics files and plots (both small, in git, not cached).
OUT, PERSIST, METRIC, PLOT = "out", "persist", "metric", "plot"


@dataclass(frozen=True)
class Artifact:
    """A file or folder `name` in the workspace folder `group` (raw, virtual_lab, processed, models, reports)."""

    group: str
    name: str = ""
    kind: str = OUT  # for outputs: OUT, PERSIST, METRIC or PLOT
    only_with: str = ""  # raw file or folder without which a lab's data has no such artifact (e.g. composites)

    def path(self, workspace: Workspace) -> Path:
        folder = workspace.folder(self.group)
        return folder / self.name if self.name else folder

    def applies(self, workspace: Workspace) -> bool:
        """Whether the artifact exists for this workspace's raw data (the virtual lab always makes composites)."""
        return not self.only_with or workspace.uses_virtual_lab or (workspace.raw / self.only_with).exists()


@dataclass(frozen=True)
class CliOption:
    """A stage command's flag that overrides one parameter (`section.key`) for that invocation."""

    flag: str
    section: str
    key: str
    type: type = int
    help: str = ""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. `function` is "module:function"; `asset` is its Dagster asset name."""

    name: str
    function: str
    help: str
    asset: str
    group: str
    kinds: frozenset[str]
    inputs: tuple[Artifact, ...]
    outputs: tuple[Artifact, ...]
    params: tuple[str, ...] = ()
    virtual_lab_only: bool = False  # runs only when the pipeline reads the virtual lab's folder
    benchmark: bool = False  # a study outside the main job (`matmcl run --benchmarks`, Dagster `benchmarks` job)
    cli_options: tuple[CliOption, ...] = field(default=())

    @property
    def command(self) -> str:
        """The `matmcl` subcommand."""
        return self.name.replace("_", "-")

    @property
    def module(self) -> str:
        return self.function.partition(":")[0]

    def load(self):
        """The stage function (imported on first use: some stages pull heavy libraries)."""
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)

    def code_files(self) -> tuple[Path, ...]:
        """matmcl's source files this stage runs (its DVC code dependencies)."""
        return import_closure(self.module)

    def code_version(self) -> str:
        """Hash of `code_files` (the Dagster code version: a change marks the asset stale)."""
        return code_version(self.module)


def raw(name: str = "") -> Artifact:
    return Artifact("raw", name)


def processed(name: str, kind: str = OUT) -> Artifact:
    return Artifact("processed", name, kind)


def composite(name: str) -> Artifact:
    """A processed composite table: only when the raw data has composites."""
    return Artifact("processed", name, OUT, a.COMPOSITES_CSV)


def report(name: str, kind: str = METRIC) -> Artifact:
    return Artifact("reports", name, kind)


def metrics(stage: str) -> Artifact:
    return report(a.stage_report(stage))


DATA, MODELS = "data", "models"
SGPT = Artifact("models", a.SGPT_DIR)
MODEL_DATA = (processed(a.TABLE_FILE), processed(a.SPLITS_FILE), processed(a.SCALER_FILE), processed(a.PATCHES_FILE),
              processed(a.PATCHES_DIR))  # what every SGPT-based stage reads: tables, splits, scaler, patches
TRAINING = "matmcl.stages.training"

STAGES: tuple[Stage, ...] = (
    Stage("synth", "matmcl.stages.raw:synthesize", "generate the virtual lab's raw dataset into its own folder",
          "raw_lab_data", DATA, frozenset({"python", "csv"}), (),
          (Artifact("virtual_lab", kind=PERSIST),), ("synth",), virtual_lab_only=True,
          cli_options=(CliOption("--n-films", "synth", "n_films", int, "number of films"),
                       CliOption("--seed", "synth", "seed", int, "random seed"),
                       CliOption("--workers", "synth", "workers", int, "worker processes"),
                       CliOption("--out", "workspace", "virtual_lab_dir", str,
                                 "output folder (never a lab's own data: refused if it holds other files)"))),
    Stage("lab_report", "matmcl.stages.lab_report:lab_report", "contact sheet and trend plots of the virtual-lab dataset",
          "lab_report", DATA, frozenset({"python", "png"}), (raw(),),
          (report(a.LAB_CONTACT_SHEET, PLOT), report(a.LAB_TRENDS, PLOT)), virtual_lab_only=True),
    Stage("preprocess", "matmcl.stages.preprocess:preprocess",
          "validate raw data; SEM frames -> histogram-matched patches", "sem_patches", DATA,
          frozenset({"python", "png", "parquet"}), (raw(),),
          (processed(a.PATCHES_DIR), processed(a.PATCHES_FILE), processed(a.REFERENCE_FILE), metrics("preprocess")),
          ("data", "bounds", "preprocess")),
    Stage("tensile", "matmcl.stages.tensile:tensile", "five tensile properties per curve, replicate means per film",
          "tensile_properties", DATA, frozenset({"python", "parquet"}), (raw(),),
          (processed(a.CURVE_PROPERTIES_FILE), processed(a.PROPERTIES_FILE), composite(a.COMPOSITE_PROPERTIES_FILE),
           metrics("tensile")), ("data", "bounds")),
    Stage("features", "matmcl.stages.features:features", "structural features per raw SEM frame and per film",
          "structural_features", DATA, frozenset({"python", "parquet"}),
          (raw(),),
          (processed(a.FRAME_FEATURES_FILE), processed(a.FEATURES_FILE), processed(a.FIBER_NETWORKS_FILE),
           metrics("features"),
           Artifact("reports", a.FEATURE_ERRORS_CSV, PLOT, a.GROUND_TRUTH_DIR)), ("features",)),
    Stage("tables", "matmcl.stages.tables:tables", "model-ready tables, film-level splits and the condition scaler",
          "model_tables", DATA, frozenset({"python", "parquet"}),
          (raw(a.CONDITIONS_CSV), processed(a.PROPERTIES_FILE), composite(a.COMPOSITE_PROPERTIES_FILE),
           processed(a.PATCHES_FILE)),
          (processed(a.TABLE_FILE), processed(a.SPLITS_FILE), processed(a.SCALER_FILE),
           composite(a.COMPOSITE_TABLE_FILE), metrics("tables")), ("data", "bounds", "tables")),
    Stage("data_report", "matmcl.stages.report:data_report", "reports/data.json and the data plots", "data_report",
          DATA, frozenset({"python", "json", "png"}),
          (raw(), processed(a.PATCHES_DIR), processed(a.PATCHES_FILE), processed(a.FEATURES_FILE),
           processed(a.TABLE_FILE), metrics("preprocess"), metrics("tensile"), metrics("features"),
           metrics("tables")),
          (metrics("data"), report(a.MATCHING_PLOT, PLOT), report(a.FEATURES_PLOT, PLOT),
           report(a.PROPERTIES_PLOT, PLOT)), ("preprocess",)),
    Stage("pretrain", f"{TRAINING}:pretrain", "structure-guided pre-training (SGPT) into models/sgpt", "sgpt_model",
          MODELS, frozenset({"pytorch", "mlflow"}),
          MODEL_DATA,
          (SGPT, metrics("pretrain"), report(a.PRETRAIN_LOSS_PLOT, PLOT)),
          ("pretrain", "tracking")),
    Stage("heads", f"{TRAINING}:heads", "property heads served by `matmcl predict` into models/property",
          "property_heads", MODELS, frozenset({"pytorch", "mlflow"}),
          (SGPT, *MODEL_DATA),
          (Artifact("models", a.HEADS_DIR), metrics("heads")), ("property", "tracking")),
    Stage("composite", "matmcl.stages.composite:composite",
          "multi-stage learning S -> FP -> CP on the composites, ablations, anisotropy screening (virtual lab)",
          "composite_model", MODELS, frozenset({"pytorch", "mlflow"}),
          (SGPT, processed(a.TABLE_FILE), processed(a.SPLITS_FILE),
           processed(a.SCALER_FILE), processed(a.PATCHES_FILE), composite(a.COMPOSITE_TABLE_FILE),
           metrics("pretrain")),
          (Artifact("models", a.COMPOSITE_DIR, OUT, a.COMPOSITES_CSV), metrics("composite"),
           Artifact("reports", a.COMPOSITE_PLOTS_DIR, PLOT, a.COMPOSITES_CSV)),
          ("composite", "synth", "tracking")),
    Stage("evaluate", f"{TRAINING}:evaluate", "film-level K-fold CV (one SGPT per fold): variants, baselines, ceilings, paired comparisons; alignment",
          "model_evaluation", MODELS, frozenset({"python", "json", "png"}),
          (SGPT, *MODEL_DATA, processed(a.FEATURES_FILE), raw()),
          (metrics("evaluate"), report(a.PROPERTY_REPORT), report(a.ALIGNMENT_REPORT),
           report(a.EVALUATION_PLOTS_DIR, PLOT), Artifact("models", a.CV_EMBEDDINGS)),
          ("pretrain", "property", "evaluation", "tracking")),
    Stage("interpret", f"{TRAINING}:interpret", "SHAP of the conditions model, Grad-CAM of the vision encoder",
          "interpretation", MODELS, frozenset({"python", "json", "png"}),
          (SGPT, Artifact("models", a.HEADS_DIR), *MODEL_DATA),
          (metrics("interpret_stage"), report(a.INTERPRET_REPORT), report(a.SHAP_PLOT, PLOT),
           report(a.GRAD_CAM_PLOT, PLOT)), ("property", "evaluation")),
    Stage("retrieval", "matmcl.stages.retrieval:retrieval",
          "gallery index of the served SGPT; retrieval accuracy per CV fold against the similarity and random baselines",
          "retrieval_evaluation", MODELS, frozenset({"python", "json", "png"}),
          (SGPT, Artifact("models", a.CV_EMBEDDINGS), *MODEL_DATA, processed(a.FEATURES_FILE)),
          (Artifact("models", a.GALLERY_DIR), metrics("retrieval_stage"), report(a.RETRIEVAL_REPORT),
           report(a.RETRIEVAL_PLOTS_DIR, PLOT)), ("retrieval",)),
    Stage("inverse_design", "matmcl.stages.design:design",
          "structure proxy and inverse design of conditions for target structures and properties, verified in the "
          "virtual lab", "inverse_design", MODELS, frozenset({"pytorch", "json", "png"}),
          (SGPT, Artifact("models", a.HEADS_DIR), processed(a.TABLE_FILE),
           processed(a.SPLITS_FILE), processed(a.SCALER_FILE), processed(a.FEATURES_FILE)),
          (Artifact("models", a.DESIGN_DIR), metrics("design_stage"), report(a.DESIGN_REPORT),
           report(a.DESIGN_PLOTS_DIR, PLOT)), ("design", "synth", "features", "tracking")),
    Stage("generator", "matmcl.stages.generation:train_generator",
          "diffusion prior (condition -> structure embedding) and diffusers decoder (embedding -> SEM patch)",
          "structure_generator", MODELS, frozenset({"pytorch", "mlflow"}),
          (SGPT, *MODEL_DATA),
          (Artifact("models", a.GENERATOR_DIR), metrics("generator")), ("generation", "tracking")),
    Stage("fid", "matmcl.stages.generation:evaluate_generation",
          "FID/KID of generated vs real patches (seen and unseen conditions), features measured on generated images",
          "fid_evaluation", MODELS, frozenset({"python", "json", "png"}),
          (SGPT, Artifact("models", a.GENERATOR_DIR), metrics("generator"), *MODEL_DATA,
           processed(a.FEATURES_FILE), report(a.DESIGN_REPORT)),
          (metrics("fid"), report(a.GENERATION_REPORT), report(a.GENERATION_PLOTS_DIR, PLOT)), ("generation",)),
    Stage("descriptors", "matmcl.stages.multiscale:descriptors",
          "multiscale descriptors: fiber-network mechanics per SEM frame (sparse FE), molecular descriptors of each "
          "film's polymer (bead-spring MD)", "multiscale_descriptors", DATA, frozenset({"python", "parquet"}),
          (raw(a.CONDITIONS_CSV), processed(a.FIBER_NETWORKS_FILE)),
          (processed(a.NETWORK_DESCRIPTORS_FILE), processed(a.MOLECULAR_DESCRIPTORS_FILE), metrics("descriptors")),
          ("multiscale",)),
    Stage("multiscale", "matmcl.stages.multiscale:multiscale",
          "multiscale property model: descriptor groups per scale, gated (GFM) and attention (MAFM) fusion, one-scale "
          "ablations, film-level CV", "multiscale_model", MODELS, frozenset({"pytorch", "json", "png"}),
          (processed(a.TABLE_FILE), processed(a.FEATURES_FILE), processed(a.NETWORK_DESCRIPTORS_FILE),
           processed(a.MOLECULAR_DESCRIPTORS_FILE)),
          (Artifact("models", a.MULTISCALE_DIR), metrics("multiscale_stage"), report(a.MULTISCALE_REPORT),
           report(a.MULTISCALE_PLOTS_DIR, PLOT)), ("multiscale", "evaluation", "tracking")),
    Stage("polymer_study", "matmcl.stages.polymer_study:polymer_study",
          "the multiscale model on a multi-polymer virtual lab (benchmark, not in the main job)",
          "multiscale_polymer_study", MODELS, frozenset({"python", "json", "png"}), (),
          (report(a.POLYMER_STUDY_REPORT), report(a.POLYMER_STUDY_PLOTS_DIR, PLOT)),
          ("synth", "data", "bounds", "preprocess", "features", "tables", "multiscale", "polymer_study", "evaluation",
           "tracking"),
          virtual_lab_only=True, benchmark=True),
    Stage("active_learning", "matmcl.stages.active_learning:active_learning",
          "closed-loop active learning with the virtual lab against random and Latin-hypercube choice (benchmark, not "
          "in the main job)", "active_learning_benchmark", MODELS, frozenset({"python", "json", "png"}), (),
          (metrics("active_learning_stage"), report(a.ACTIVE_LEARNING_REPORT),
           report(a.ACTIVE_LEARNING_PLOTS_DIR, PLOT)), ("active_learning", "synth", "tracking"),
          virtual_lab_only=True, benchmark=True),
)


@cache
def stage(name: str) -> Stage:
    """The row of stage `name` (its `name`, CLI `command` or Dagster `asset`)."""
    for row in STAGES:
        if name in (row.name, row.command, row.asset):
            return row
    raise KeyError(f"no stage {name!r}; stages: {[row.name for row in STAGES]}")


def _within(path: Artifact, output: Artifact, workspace: Workspace) -> bool:
    inner, outer = path.path(workspace).resolve(), output.path(workspace).resolve()
    return inner == outer or outer in inner.parents or inner in outer.parents


def upstream(row: Stage, workspace: Workspace, stages: tuple[Stage, ...] = STAGES) -> tuple[Stage, ...]:
    """The stages that write something `row` reads (an input inside, equal to or containing one of their outputs)."""
    return tuple(other for other in stages if other is not row and any(
        _within(i, o, workspace) for i in row.inputs for o in other.outputs))


def active_stages(workspace: Workspace) -> tuple[Stage, ...]:
    """The stages that apply to this workspace: without the virtual-lab-only ones when it reads a lab's own data."""
    return tuple(row for row in STAGES if workspace.uses_virtual_lab or not row.virtual_lab_only)


def main_job_stages(workspace: Workspace) -> tuple[Stage, ...]:
    """The stages of the main job (`matmcl run`): the active stages without the benchmarks."""
    return tuple(row for row in active_stages(workspace) if not row.benchmark)
