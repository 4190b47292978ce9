"""A first look at a virtual-lab dataset: an SEM contact sheet across the condition range and trend plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from matmcl.artifacts import FRAMES_CSV, GROUND_TRUTH_DIR, LAB_CONTACT_SHEET, LAB_TRENDS
from matmcl.evaluation.plots import (
    column_label,
    panel_grid,
    plot_image_grid,
    save_figure,
)
from matmcl.schema import FILM_ID

# Conditions whose extremes the contact sheet shows, with a short label.
CONTACT_SHEET_AXES = {
    "concentration_wt_pct": "conc",
    "drum_speed_rpm": "drum",
    "voltage_kv": "voltage",
    "flow_rate_ml_h": "flow",
}
CONTACT_CROP_PX = 256
LONG, TRANS = 1, 0


def _pick_extremes(films: pd.DataFrame) -> list[tuple[str, str]]:
    """(film_id, caption) for the lowest and highest value of each contact-sheet condition."""
    picks = []
    for column, label in CONTACT_SHEET_AXES.items():
        for end, row in (("low", films.loc[films[column].idxmin()]), ("high", films.loc[films[column].idxmax()])):
            caption = (f"{label} {end}: {row[FILM_ID]}\n{row['concentration_wt_pct']:g} wt%, {row['drum_speed_rpm']:g} rpm, "
                       f"{row['voltage_kv']:g} kV\nd={row['diameter_mean_nm']:.0f} nm, S={row['orientation_order']:.2f}")
            picks.append((row[FILM_ID], caption))
    return picks


def write_contact_sheet(raw: Path, films: pd.DataFrame, path: Path) -> Path:
    """Top-left crops of frame 0 of the films at both ends of each condition's range."""
    from matmcl.rawdata import load_sem_image

    frames = pd.read_csv(raw / FRAMES_CSV)
    images, titles = [], []
    for film_id, caption in _pick_extremes(films):
        row = frames[(frames[FILM_ID] == film_id) & (frames["frame"] == 0)].iloc[0]
        image = load_sem_image(raw / row["path"])
        images.append(image[:CONTACT_CROP_PX, :CONTACT_CROP_PX])
        titles.append(caption)
    return plot_image_grid(images, titles, path, n_cols=4)


def _scatter(ax, x, y, xlabel: str, ylabel: str, **kwargs) -> None:
    ax.scatter(x, y, s=10, alpha=0.7, **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def write_trend_plots(films: pd.DataFrame, properties: pd.DataFrame, path: Path) -> Path:
    """Structure vs conditions and per-direction properties vs structure, from the ground-truth tables."""
    wide = properties.pivot(index=FILM_ID, columns="direction").reindex(films[FILM_ID])
    fig, axes = panel_grid(8, 4)
    _scatter(axes[0], films["concentration_wt_pct"], films["diameter_mean_nm"], column_label("concentration_wt_pct"),
             column_label("diameter_mean_nm"), c=films["voltage_kv"], cmap="viridis")
    axes[0].set_title("diameter (colour: voltage)")
    _scatter(axes[1], films["drum_speed_rpm"], films["orientation_order"], column_label("drum_speed_rpm"), "orientation order S")
    _scatter(axes[2], films["concentration_wt_pct"], films["bead_density_per_um2"], column_label("concentration_wt_pct"), "beads per µm²")
    _scatter(axes[3], films["diameter_mean_nm"], films["pore_size_um"], column_label("diameter_mean_nm"), column_label("pore_size_um"))
    for ax, prop, xcol in ((axes[4], "elastic_modulus_mpa", "drum_speed_rpm"), (axes[5], "fracture_strength_mpa", "drum_speed_rpm"),
                           (axes[6], "elongation_at_break_pct", "orientation_order")):
        for flag, name, color in ((LONG, "longitudinal", "tab:blue"), (TRANS, "transverse", "tab:orange")):
            _scatter(ax, films[xcol], wide[(prop, flag)], column_label(xcol) if xcol != "orientation_order" else "orientation order S",
                     column_label(prop), color=color, label=name)
        ax.legend(fontsize=7)
    ratio = wide[("elastic_modulus_mpa", LONG)] / wide[("elastic_modulus_mpa", TRANS)]
    _scatter(axes[7], films["orientation_order"], ratio, "orientation order S", "modulus ratio long./trans.")
    axes[7].set_yscale("log")
    return save_figure(fig, path)


def write_lab_report(raw: str | Path, reports: str | Path) -> dict[str, Path]:
    """Write `lab_contact_sheet.png` and `lab_trends.png` for the virtual-lab dataset in `raw`."""
    raw, reports = Path(raw), Path(reports)
    truth = raw / GROUND_TRUTH_DIR
    if not truth.exists():
        raise FileNotFoundError(f"{truth} not found: the lab report needs a virtual-lab dataset (matmcl synth)")
    films = pd.read_parquet(truth / "films.parquet")
    properties = pd.read_parquet(truth / "properties.parquet")
    return {
        "contact_sheet": write_contact_sheet(raw, films, reports / LAB_CONTACT_SHEET),
        "trends": write_trend_plots(films, properties, reports / LAB_TRENDS),
    }
