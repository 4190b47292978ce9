"""The saved gallery index (`models/gallery/`) and `Retriever`, which encodes queries with the served SGPT.

Folder layout (docs/retrieval.md): `films.parquet` (film_id, the six conditions, measured features, `source`:
"processed" or "user"), `condition_embeddings.npy` and `structure_embeddings.npy` ((n, d) float32 unit vectors, rows
in films.parquet order), `patches.npy` ((n, H, W) uint8, one representative patch per film, for image grids),
`gallery.json` (pixel size of the patches, embedding size) and `lineage.json` (data version, params hash, code
version and the SGPT fingerprint). A gallery is refused (LineageError) by a Retriever whose SGPT differs from the
one it was built with, since embeddings of two models do not share a space. Queries never re-encode the gallery.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from matmcl.artifacts import GALLERY_DIR, PATCHES_FILE, REFERENCE_FILE, SGPT_DIR, SPLITS_FILE
from matmcl.atomic import atomic_dir, write_json
from matmcl.codebase import code_version
from matmcl.config import BoundsConfig
from matmcl.lineage import Lineage, check_lineage, params_hash, write_lineage
from matmcl.models.sgpt import SGPTModel
from matmcl.predict import PredictionInputError, check_conditions, patches_from_frame
from matmcl.retrieval.config import RetrievalConfig
from matmcl.retrieval.embeddings import (
    FilmEmbeddings,
    bank_of,
    embed_condition_rows,
    embed_films,
    embed_structures,
    film_rows,
)
from matmcl.retrieval.index import top_k
from matmcl.schema import CONDITION_COLUMNS, DIRECTION, FEATURE_COLUMNS, FILM_ID, LONGITUDINAL
from matmcl.sem.histmatch import load_reference
from matmcl.training.data import ConditionScaler, PatchBank, ProcessedData
from matmcl.training.pretrain import check_sgpt, load_sgpt

FILMS_FILE, META_FILE, PATCHES_NPY = "films.parquet", "gallery.json", "patches.npy"
EMBEDDING_FILES = {"table": "condition_embeddings.npy", "image": "structure_embeddings.npy"}
SOURCE, PROCESSED, USER = "source", "processed", "user"
QUERY, RANK, SIMILARITY = "query", "rank", "similarity"
PIXEL_SIZE = "pixel_size_nm"


@dataclass
class Gallery:
    """Films with their unit condition (`table`) and structure (`image`) embeddings and a representative patch."""

    films: pd.DataFrame
    table: np.ndarray
    image: np.ndarray
    patches: np.ndarray
    pixel_size_nm: float

    def __len__(self) -> int:
        return len(self.films)

    def search(self, queries: np.ndarray, against: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k gallery rows (indices, cosine similarities) of unit `queries` against the "image" (structures)
        or "table" (conditions) embeddings."""
        return top_k(queries, self.image if against == "image" else self.table, k)

    def add(self, embeddings: FilmEmbeddings, patches: Sequence[np.ndarray], features: pd.DataFrame | None = None
            ) -> Gallery:
        """A new gallery with the films of `embeddings` appended (their `source` is "user"); `patches`: one
        representative 2-D uint8 patch per film (resized to the gallery's patch size); `features`: optional
        measured features (film_id + columns)."""
        clash = sorted(set(embeddings.film_id) & set(self.films[FILM_ID]))
        if clash:
            raise ValueError(f"film ids {clash} are already in the gallery; choose new ids")
        if embeddings.image.shape[1] != self.image.shape[1]:
            raise ValueError(f"embeddings of size {embeddings.image.shape[1]} for a gallery of size "
                             f"{self.image.shape[1]}")
        patches = np.stack([_fit_patch(p, self.patches.shape[1:]) for p in patches])
        new = pd.DataFrame({FILM_ID: embeddings.film_id, SOURCE: USER})
        new[list(CONDITION_COLUMNS)] = embeddings.conditions
        if features is not None:
            new = new.merge(features, on=FILM_ID, how="left")
        films = pd.concat([self.films, new], ignore_index=True)[self.films.columns]
        return dataclasses.replace(self, films=films, table=np.vstack([self.table, embeddings.table]),
                                   image=np.vstack([self.image, embeddings.image]),
                                   patches=np.concatenate([self.patches, patches]))

    def save(self, directory: str | Path, lineage: Lineage) -> Lineage:
        """Write the gallery folder atomically with its lineage; returns the lineage written."""
        with atomic_dir(directory) as tmp:
            self.films.to_parquet(tmp / FILMS_FILE, index=False)
            for name, file in EMBEDDING_FILES.items():
                np.save(tmp / file, getattr(self, name).astype(np.float32))
            np.save(tmp / PATCHES_NPY, self.patches)
            write_json({"pixel_size_nm": self.pixel_size_nm, "embed_dim": int(self.image.shape[1]),
                        "n_films": len(self)}, tmp / META_FILE)
            return write_lineage(tmp, lineage)

    @classmethod
    def load(cls, directory: str | Path, sgpt_fingerprint: str | None = None) -> Gallery:
        """Read a gallery folder; with `sgpt_fingerprint`, refuse (LineageError) one built with another SGPT."""
        directory = Path(directory)
        if not (directory / FILMS_FILE).is_file():
            raise FileNotFoundError(f"{directory} is not a gallery folder (no {FILMS_FILE}): run `matmcl retrieval`")
        if sgpt_fingerprint is not None:
            check_lineage(directory, {SGPT_DIR: sgpt_fingerprint}, "retrieval")
        meta = json.loads((directory / META_FILE).read_text())
        embeddings = {name: np.load(directory / file) for name, file in EMBEDDING_FILES.items()}
        return cls(pd.read_parquet(directory / FILMS_FILE), embeddings["table"], embeddings["image"],
                   np.load(directory / PATCHES_NPY), float(meta["pixel_size_nm"]))


def _fit_patch(patch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A representative patch resized to the gallery's patch size (for image grids only)."""
    patch = np.asarray(patch, dtype=np.uint8)
    if patch.shape == tuple(shape):
        return patch
    return np.asarray(Image.fromarray(patch).resize(shape[::-1], Image.Resampling.BILINEAR), dtype=np.uint8)


def _representative(bank: PatchBank, film_ids: Sequence[str]) -> np.ndarray:
    """The middle patch of each film in `bank`, (n, H, W) uint8."""
    return np.stack([bank.pixels[bank.film_patches(f)[bank.count[f] // 2], 0].numpy() for f in film_ids])


def gallery_film_ids(processed_dir: Path, table: pd.DataFrame, which: str) -> list[str]:
    """All processed films, or those flagged `gallery` in splits.parquet (`which`: "all" | "gallery")."""
    films = table[FILM_ID].drop_duplicates().tolist()
    if which == "all":
        return films
    splits = pd.read_parquet(processed_dir / SPLITS_FILE)
    flagged = set(splits.loc[splits["gallery"].astype(bool), FILM_ID])
    if not flagged:
        raise ValueError(f"{processed_dir / SPLITS_FILE} flags no gallery film; use retrieval.gallery_films: all")
    return [f for f in films if f in flagged]


def build_gallery(processed_dir: str | Path, sgpt_dir: str | Path, config: RetrievalConfig
                  ) -> tuple[Gallery, Lineage]:
    """Embed the gallery films (`config.gallery_films`) with the served SGPT; returns the gallery and the lineage
    to save it with (refuses an SGPT trained on other data)."""
    processed_dir = Path(processed_dir)
    sources = check_sgpt(sgpt_dir, processed_dir)
    sgpt, pretrain_config = load_sgpt(sgpt_dir)
    data = ProcessedData.load(processed_dir)
    ids = gallery_film_ids(processed_dir, data.table, config.gallery_films)
    bank = PatchBank.load(processed_dir, ids, config.patches_per_film)
    rows = film_rows(data.table, ids)
    embeddings = embed_films(sgpt, pretrain_config.image_size, data.scaler, rows, bank, config.embed_batch_size,
                             config.device)
    films = rows[[FILM_ID, *CONDITION_COLUMNS]].assign(**{SOURCE: PROCESSED})
    if data.features is not None:
        columns = [c for c in FEATURE_COLUMNS if c in data.features.columns]
        films = films.merge(data.features[[FILM_ID, *columns]], on=FILM_ID, how="left")
    manifest = pd.read_parquet(processed_dir / PATCHES_FILE)
    sizes = manifest.loc[manifest[FILM_ID].isin(set(ids))].get(PIXEL_SIZE, pd.Series(dtype=float))
    pixel_size = float(sizes.median()) if sizes.notna().any() else float("nan")  # NaN: unknown (e.g. a bundle)
    gallery = Gallery(films, embeddings.table, embeddings.image, _representative(bank, ids), pixel_size)
    lineage = Lineage.of(sources, params_hash({"retrieval": config}), code_version(__name__))
    return gallery, lineage


@dataclass
class Retriever:
    """The served SGPT, the condition scaler, the histogram reference and a gallery: encodes queries and ranks."""

    sgpt: SGPTModel
    image_size: int
    scaler: ConditionScaler
    gallery: Gallery
    lineage: Lineage
    reference: np.ndarray | None
    patch_px: int
    batch_size: int = 256

    @classmethod
    def load(cls, models_dir: str | Path, processed_dir: str | Path, gallery_dir: str | Path | None = None
             ) -> Retriever:
        """From models_dir/sgpt (checked against the processed folder), the processed scaler and reference, and
        the gallery (default models_dir/gallery; refused when built with another SGPT)."""
        models_dir, processed_dir = Path(models_dir), Path(processed_dir)
        sources = check_sgpt(models_dir / SGPT_DIR, processed_dir)
        sgpt, pretrain_config = load_sgpt(models_dir / SGPT_DIR)
        gallery_dir = Path(gallery_dir) if gallery_dir else models_dir / GALLERY_DIR
        lineage = check_lineage(gallery_dir, {SGPT_DIR: sources[SGPT_DIR]}, "retrieval")
        gallery = Gallery.load(gallery_dir)
        reference_path = processed_dir / REFERENCE_FILE
        return cls(sgpt, pretrain_config.image_size, ConditionScaler.load(processed_dir / "scaler.json"), gallery,
                   lineage, load_reference(reference_path) if reference_path.is_file() else None,
                   int(gallery.patches.shape[1]))

    def patches_from_frame(self, frame: np.ndarray, info_bar_px: int, pixel_size_nm: float | None = None
                           ) -> list[np.ndarray]:
        """A raw SEM frame → histogram-matched patches like the gallery's; with `pixel_size_nm`, the frame is first
        resampled to the gallery's pixel size (when known), so fibers appear at the scale the model was trained
        on."""
        if self.reference is None:
            raise FileNotFoundError(f"the processed folder has no {REFERENCE_FILE}: cannot match SEM frames")
        if frame.ndim != 2:
            raise PredictionInputError(f"need a 2-D grayscale frame, got shape {frame.shape}")
        if not 0 <= info_bar_px < frame.shape[0]:
            raise PredictionInputError(f"info bar of {info_bar_px} rows does not fit a frame {frame.shape[0]} rows high")
        area = frame[: frame.shape[0] - info_bar_px]
        if pixel_size_nm is not None and np.isfinite(self.gallery.pixel_size_nm):
            if not pixel_size_nm > 0:
                raise PredictionInputError(f"pixel size must be > 0 nm, got {pixel_size_nm}")
            scale = pixel_size_nm / self.gallery.pixel_size_nm
            size = (max(1, round(area.shape[1] * scale)), max(1, round(area.shape[0] * scale)))
            area = np.asarray(Image.fromarray(area).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
        try:
            return patches_from_frame(area, 0, self.patch_px, self.reference)
        except ValueError as exc:
            raise PredictionInputError(str(exc)) from exc

    def condition_embeddings(self, conditions: pd.DataFrame, bounds: BoundsConfig | None = None) -> np.ndarray:
        """(q, d) embeddings of condition rows (the six columns; longitudinal row), validated like predictions."""
        values = check_conditions(conditions, bounds)
        return embed_condition_rows(self.sgpt, self.scaler, values.assign(**{DIRECTION: LONGITUDINAL}))

    def structure_embeddings(self, images: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """(q, d) embeddings of queries given as lists of preprocessed patches (2-D uint8, e.g. from
        `patches_from_frame`)."""
        for i, patches in enumerate(images):
            shapes = {np.asarray(p).shape for p in patches}
            if not patches or len(shapes) > 1 or any(len(s) != 2 for s in shapes):
                raise PredictionInputError(f"query {i}: need one or more same-size 2-D patches, got shapes "
                                           f"{sorted(shapes)}")
        bank = bank_of({str(i): list(p) for i, p in enumerate(images)})
        return embed_structures(self.sgpt, self.image_size, bank, [str(i) for i in range(len(images))],
                                self.batch_size)

    def _ranked(self, queries: np.ndarray, against: str, k: int) -> pd.DataFrame:
        if k < 1:
            raise PredictionInputError(f"top-k must be >= 1, got {k}")
        index, similarity = self.gallery.search(queries, against, k)
        out = self.gallery.films.iloc[index.ravel()].reset_index(drop=True)
        out.insert(0, SIMILARITY, similarity.ravel())
        out.insert(0, RANK, np.tile(np.arange(1, index.shape[1] + 1), len(index)))
        out.insert(0, QUERY, np.repeat(np.arange(len(index)), index.shape[1]))
        return out

    def retrieve_structures(self, conditions: pd.DataFrame, k: int, bounds: BoundsConfig | None = None
                            ) -> pd.DataFrame:
        """The k gallery films whose structure best matches each condition row: query, rank, similarity, film id,
        conditions, measured features."""
        return self._ranked(self.condition_embeddings(conditions, bounds), "image", k)

    def retrieve_conditions(self, images: Sequence[Sequence[np.ndarray]], k: int) -> pd.DataFrame:
        """The k gallery films whose conditions best match each query structure (a list of patches)."""
        return self._ranked(self.structure_embeddings(images), "table", k)

    def add_films(self, film_ids: Sequence[str], conditions: pd.DataFrame,
                  images: Sequence[Sequence[np.ndarray]], features: pd.DataFrame | None = None) -> Gallery:
        """Add a user's films (ids, condition rows, preprocessed patches per film) to this retriever's gallery and
        return it; `save_gallery` writes it."""
        if len(film_ids) != len(conditions) or len(film_ids) != len(images):
            raise PredictionInputError(f"{len(film_ids)} film ids, {len(conditions)} condition rows and "
                                       f"{len(images)} image sets: give one of each per film")
        values = check_conditions(conditions).assign(**{FILM_ID: [str(f) for f in film_ids]})
        embeddings = FilmEmbeddings(values[FILM_ID].to_numpy(dtype=str), values[list(CONDITION_COLUMNS)].to_numpy(),
                                    self.condition_embeddings(values), self.structure_embeddings(images))
        self.gallery = self.gallery.add(embeddings, [p[len(p) // 2] for p in images], features)
        return self.gallery

    def save_gallery(self, directory: str | Path) -> Lineage:
        """Write the gallery (with the films added) under the lineage it was loaded with."""
        return self.gallery.save(directory, dataclasses.replace(self.lineage, fingerprint=""))
