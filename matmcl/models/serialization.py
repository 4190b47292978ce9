"""Model folders in the diffusers style: `config.json` (the dataclass config) + `model.pt` (the state dict)."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.pt"
CLASS_KEY = "_class_name"

C = TypeVar("C")


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build dataclass `cls` from plain data (e.g. JSON): nested dataclasses, tuples and dicts of dataclasses.

    Keys starting with "_" are metadata and skipped; any other unknown key is an error naming it.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known: {sorted(known)}")
    return cls(**{name: _convert(hints[name], value) for name, value in values.items()})


def _convert(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return config_from_dict(tp, value)
    origin = typing.get_origin(tp)
    if origin is tuple:
        return tuple(value)
    if origin is dict:
        _, value_type = typing.get_args(tp)
        return {k: _convert(value_type, v) for k, v in value.items()}
    return value


def _atomic_write(path: Path, write: typing.Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_pretrained(model: nn.Module, config: Any, directory: str | Path) -> Path:
    """Write `config.json` and `model.pt` into `directory` (created if needed); each file appears atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = {CLASS_KEY: type(model).__name__, **dataclasses.asdict(config)}
    _atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))
    _atomic_write(directory / WEIGHTS_NAME, lambda p: torch.save(model.state_dict(), p))
    return directory


def load_pretrained(
    directory: str | Path, config_cls: type[C], class_name: str, map_location: str | torch.device = "cpu"
) -> tuple[C, dict[str, torch.Tensor]]:
    """Read a folder written by `save_pretrained`: the config as `config_cls` and the state dict."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing; expected a folder written by save_pretrained")
    data = json.loads((directory / CONFIG_NAME).read_text())
    if data.get(CLASS_KEY, class_name) != class_name:
        raise ValueError(f"{directory / CONFIG_NAME} holds a {data[CLASS_KEY]}, not a {class_name}")
    state = torch.load(directory / WEIGHTS_NAME, map_location=map_location, weights_only=True)
    return config_from_dict(config_cls, data), state
