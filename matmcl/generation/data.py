"""Training material of the generator: longitudinal rows of the training films, their SGPT condition embeddings,
their patches with SGPT image embeddings, and random native-resolution crops of those patches.

Images are generated in the longitudinal orientation (drum axis along x), so only longitudinal rows are used and no
patch is rotated. The decoder learns crops of `image_px` at the patches' native pixel size (random crops are its
augmentation), conditioned on the embedding of the whole patch the crop comes from, as SGPT sees it (resized to its
image size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matmcl.models.sgpt import SGPTModel
from matmcl.schema import DIRECTION, LONGITUDINAL
from matmcl.training.data import PIXEL_MAX, ProcessedData, RowPatches, model_images
from matmcl.training.properties import embed_conditions, embed_pairs

IMAGE = "image"


def longitudinal(rows: pd.DataFrame) -> pd.DataFrame:
    """The longitudinal rows (one per film) of table rows."""
    return rows[rows[DIRECTION] == LONGITUDINAL].reset_index(drop=True)


def to_signed(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1] (the decoder's range)."""
    return pixels.float() / (PIXEL_MAX / 2) - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Decoder images in [-1, 1] (N, 1, S, S) → uint8 (N, S, S)."""
    return ((images[:, 0].clamp(-1, 1) + 1) * (PIXEL_MAX / 2)).round().to(torch.uint8).numpy()


def random_crops(pixels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random `size` × `size` crop of each uint8 patch (N, 1, H, W) → (N, 1, size, size), same dtype."""
    height, width = pixels.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"crop size {size} px exceeds the patches' {height} × {width} px")
    ys = torch.randint(0, height - size + 1, (len(pixels),), generator=generator).tolist()
    xs = torch.randint(0, width - size + 1, (len(pixels),), generator=generator).tolist()
    return torch.stack([p[:, y:y + size, x:x + size] for p, y, x in zip(pixels, ys, xs)])


@torch.no_grad()
def encoder_features(sgpt: SGPTModel, crops: np.ndarray | torch.Tensor, image_size: int, device: torch.device,
                     batch_size: int = 256) -> np.ndarray:
    """FID features of uint8 crops (N, S, S): the SGPT vision encoder's output before the shared projector
    ("image_pre"), at SGPT's image size, float64 (N, d)."""
    pixels = torch.as_tensor(np.asarray(crops))[:, None]
    sgpt.eval().to(device)
    chunks = [sgpt.encoders[IMAGE](model_images(chunk, image_size, torch.zeros(len(chunk), dtype=torch.bool))
                                   .to(device)).cpu()
              for chunk in pixels.split(batch_size)]
    return torch.cat(chunks).double().numpy()


@dataclass
class GeneratorData:
    """Pair k joins row `row[k]` (condition embedding `cond[row[k]]`) and patch `pixels[patch[k]]` (image
    embedding `image[k]`)."""

    rows: pd.DataFrame
    cond: torch.Tensor
    image: torch.Tensor
    row: torch.Tensor
    patch: torch.Tensor
    pixels: torch.Tensor

    @classmethod
    def build(cls, data: ProcessedData, splits: tuple[str, ...], sgpt: SGPTModel, image_size: int, per_film: int,
              batch_size: int, device: torch.device) -> GeneratorData:
        """Embed the longitudinal rows of the films in `splits` and `per_film` evenly spaced patches of each."""
        rows = longitudinal(data.rows(splits))
        pairs = RowPatches.from_bank(rows, data.scaler, data.patches(rows, per_film))
        images = embed_pairs(sgpt, IMAGE, pairs, image_size, batch_size, device)
        cond = embed_conditions(sgpt, pairs.inputs, device)
        return cls(rows, cond.values, images.values, pairs.row, pairs.patch, pairs.pixels)

    def __len__(self) -> int:
        return len(self.row)

    def prior_batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image embeddings, their rows' condition embeddings) of random pairs."""
        k = torch.randint(0, len(self), (batch_size,), generator=generator)
        return self.image[k], self.cond[self.row[k]]

    def decoder_batch(self, generator: torch.Generator, batch_size: int, size: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(random crops in [-1, 1], the image embeddings of their patches) of random pairs."""
        k = torch.randint(0, len(self), (batch_size,), generator=generator)
        return to_signed(random_crops(self.pixels[self.patch[k]], size, generator)), self.image[k]

    def film_embeddings(self) -> np.ndarray:
        """Mean image embedding of each row's patches, renormalised (R, d)."""
        sums = torch.zeros(len(self.rows), self.image.shape[1]).index_add_(0, self.row, self.image)
        return torch.nn.functional.normalize(sums, dim=1).numpy()
