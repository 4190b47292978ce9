"""The name of every artifact, in one place: the raw layout a lab brings (docs/data-format.md), the processed files
(docs/processed-format.md), the model folders and the reports. Each name is relative to the workspace folder its
group is named after; `matmcl.config.Workspace` turns them into paths and the stage table (matmcl.stages.table)
says which stage reads and writes which.
"""

from __future__ import annotations

# Raw data (read only; a lab's own folder or the virtual lab's).
CONDITIONS_CSV = "conditions.csv"
FRAMES_CSV = "sem/frames.csv"
CURVES_CSV = "tensile/curves.csv"
COMPOSITES_CSV = "composites/composites.csv"
COMPOSITE_CURVES_CSV = "composites/tensile/curves.csv"
RAW_INDEX_FILES = (CONDITIONS_CSV, FRAMES_CSV, CURVES_CSV)  # their content identifies a raw dataset
GROUND_TRUTH_DIR = "ground_truth"  # virtual lab only
LAB_MANIFEST = "manifest.json"  # virtual lab only: what it wrote, with which parameters

# Processed data.
PATCHES_DIR = "patches"
PATCHES_FILE = "patches.parquet"
REFERENCE_FILE = "reference_histogram.json"
CURVE_PROPERTIES_FILE = "curve_properties.parquet"
PROPERTIES_FILE = "properties.parquet"
COMPOSITE_PROPERTIES_FILE = "composite_properties.parquet"
FRAME_FEATURES_FILE = "frame_features.parquet"
FEATURES_FILE = "features.parquet"
FIBER_NETWORKS_FILE = "fiber_networks.parquet"  # per SEM frame: the fiber network graph (features stage)
TABLE_FILE = "table.parquet"
SPLITS_FILE = "splits.parquet"
SCALER_FILE = "scaler.json"
COMPOSITE_TABLE_FILE = "composite_table.parquet"
NETWORK_DESCRIPTORS_FILE = "network_descriptors.parquet"  # fiber-network mechanics per SEM frame (continuum scale)
MOLECULAR_DESCRIPTORS_FILE = "molecular_descriptors.parquet"  # bead-spring MD descriptors per film's polymer

# Model folders (under the models folder).
SGPT_DIR = "sgpt"
HEADS_DIR = "property"
COMPOSITE_DIR = "composite"  # multi-stage composite model: nanofiber_fp/ and msl/ (docs/composites.md)
CV_EMBEDDINGS = "cv_embeddings.npz"  # per CV fold: its SGPT's embeddings of training and test films (retrieval)
GALLERY_DIR = "gallery"  # retrieval gallery index of the served SGPT (docs/retrieval.md)
DESIGN_DIR = "design"  # inverse-design proxy ensemble (docs/design.md)
GENERATOR_DIR = "generator"  # diffusion prior and decoder (docs/generation.md)
MULTISCALE_DIR = "multiscale"  # multiscale fusion property model (docs/multiscale.md)

# Reports (under the reports folder). Each stage also writes reports/<stage>.json.
TIMING_REPORT = "timing.json"
DATA_REPORT = "data.json"
PROPERTY_REPORT = "property.json"
ALIGNMENT_REPORT = "alignment.json"
EVALUATION_PLOTS_DIR = "evaluation"
FEATURE_ERRORS_CSV = "feature_errors_per_film.csv"
LAB_CONTACT_SHEET = "lab_contact_sheet.png"
LAB_TRENDS = "lab_trends.png"
MATCHING_PLOT = "data_histogram_matching.png"
FEATURES_PLOT = "data_features.png"
PROPERTIES_PLOT = "data_properties.png"
PRETRAIN_LOSS_PLOT = "pretrain_loss.png"
COMPOSITE_PLOTS_DIR = "composite"  # parity and screening plots, screening candidates CSV
RETRIEVAL_REPORT = "retrieval.json"
RETRIEVAL_PLOTS_DIR = "retrieval"
DESIGN_REPORT = "design.json"
DESIGN_PLOTS_DIR = "design"
GENERATION_REPORT = "generation.json"
GENERATION_PLOTS_DIR = "generation"
MULTISCALE_REPORT = "multiscale.json"
MULTISCALE_PLOTS_DIR = "multiscale"
POLYMER_STUDY_REPORT = "multiscale_polymers.json"  # the multiscale model on a multi-polymer virtual lab
POLYMER_STUDY_PLOTS_DIR = "multiscale_polymers"
ACTIVE_LEARNING_REPORT = "active_learning.json"
ACTIVE_LEARNING_PLOTS_DIR = "active_learning"


def stage_report(stage: str) -> str:
    """The metrics file a stage writes (what `dvc metrics show` and the Dagster UI read)."""
    return f"{stage}.json"
INTERPRET_REPORT = "interpret.json"  # SHAP importances and physics checks (stage interpret)
SHAP_PLOT = "interpret/shap_summary.png"
GRAD_CAM_PLOT = "interpret/grad_cam.png"
