"""Making designs in the virtual lab and measuring them with the pipeline's own measurement.

Structure: films drawn at the given conditions (matmcl.lab.physics), `frames` SEM frames rendered per film
(matmcl.lab.render, info bar as the virtual lab writes it) and measured with `measure_frame` exactly as the features
stage measures raw frames; a film's features are its frame means (matmcl.features.extractor.film_features does the
same). With `film_effects` off the lab makes its typical film at each condition (the film-to-film random effects of
the physics set to zero), so a comparison measures where the conditions put the structure, not the lab's scatter.
Random streams: the films and frames of row i depend only on (seed, stream, i, frame), so the designs of every
method compared on one target see the same replicates.

Properties: `fabricate` of matmcl.composites.screening (specimen curves written and read back with matmcl.tensile).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matmcl.composites.screening import fabricate
from matmcl.design.proxy import STRUCTURE_COLUMNS
from matmcl.features.measure import measure_frame
from matmcl.lab.physics import PHYSICS, LabPhysics, draw_film_structure
from matmcl.lab.render import render_frame
from matmcl.parallel import map_forked
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, DIRECTION_FLAGS, PROPERTY_COLUMNS

STREAM_DESIGN = 20  # random streams of the design stage (beside the dataset's 1–4 and screening's 7)
TYPICAL = dataclasses.replace(PHYSICS, **{f.name: 0.0 for f in dataclasses.fields(LabPhysics)
                                          if f.name.startswith("film_")})


@dataclass(frozen=True)
class LabProtocol:
    """How a design is made and measured: frame geometry, frames per film, film-to-film scatter, seed."""

    width_px: int
    height_px: int
    info_bar_px: int
    pixel_size_nm: float
    frames: int
    film_effects: bool
    seed: int
    workers: int = 1


def _measure_job(job: tuple[int, int], films: list[dict], protocol: LabProtocol, stream: int) -> tuple[float, ...]:
    """Render frame `f` of film `i` and measure its three structural features (NaN where undefined)."""
    i, f = job
    rng = np.random.default_rng([protocol.seed, STREAM_DESIGN, stream, i, f])
    image, _ = render_frame(films[i], protocol.width_px, protocol.height_px, protocol.info_bar_px,
                            protocol.pixel_size_nm, rng)
    measured = measure_frame(image, protocol.pixel_size_nm, protocol.info_bar_px)
    return tuple(np.nan if measured[c] is None else float(measured[c]) for c in STRUCTURE_COLUMNS)


def measure_structures(conditions: pd.DataFrame, protocol: LabProtocol, stream: int, progress: bool = False,
                       desc: str = "lab") -> np.ndarray:
    """(n, 3) measured orientation order, diameter (nm) and pore size (µm) of films made at each condition row."""
    conditions = conditions[list(CONDITION_COLUMNS)].reset_index(drop=True)
    physics = PHYSICS if protocol.film_effects else TYPICAL
    films = draw_film_structure(conditions, np.random.default_rng([protocol.seed, STREAM_DESIGN, stream]), physics)
    jobs = [(i, f) for i in range(len(films)) for f in range(protocol.frames)]
    values = np.array(list(map_forked(_measure_job, jobs, (films.to_dict("records"), protocol, stream),
                                      protocol.workers, desc, progress)), dtype=float)
    with warnings.catch_warnings():  # a film none of whose frames defines a feature gets NaN there
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values.reshape(len(films), protocol.frames, len(STRUCTURE_COLUMNS)), axis=1)


def measure_properties(conditions: pd.DataFrame, direction: str, n_fabrications: int, n_replicates: int,
                       strain_step_pct: float, seed: int) -> pd.DataFrame:
    """(n, 5) nanofiber-film properties in `direction` at each condition row: mean over `n_fabrications` films of
    the replicate means measured from written tensile curves."""
    measured = fabricate(conditions, n_fabrications, n_replicates, strain_step_pct, seed, composites=False)
    films = measured[(measured["material"] == "nanofiber") & (measured[DIRECTION] == DIRECTION_FLAGS[direction])]
    return films.groupby("row")[list(PROPERTY_COLUMNS)].mean().sort_index().reset_index(drop=True)
