"""Training checkpoints: written atomically every epoch, loaded with ``weights_only=True``, and refused with
one line when they were written with another configuration (a resume must equal an unbroken run)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from harness.errors import ConfigError
from harness.fileio import write_atomic
from harness.train.config import TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format tag) atomically: a crash mid-write leaves the previous one intact."""
    write_atomic(Path(path), lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle))


def load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint at ``path`` checked against ``config``, or None when there is none (a fresh start)."""
    path = Path(path)
    if not path.is_file():
        log.info("no checkpoint at %s; starting from epoch 1", path)
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    check_resumable(state, config, path)
    return state


def check_resumable(state: dict[str, Any], config: TrainConfig, path: Path) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"checkpoint {path} has format {state.get('format')!r}, expected "
            f"{CHECKPOINT_FORMAT}; delete it to start afresh"
        )
    saved, wanted = state["config"], config.to_dict()
    for key in wanted:
        if key != "epochs" and saved.get(key) != wanted[key]:
            raise ConfigError(
                f"checkpoint {path} was written with {key}={saved.get(key)!r}, not "
                f"{wanted[key]!r}; resume with the same config or delete the checkpoint"
            )
    if saved["epochs"] != config.epochs:
        log.warning(
            "resuming %s with epochs=%d instead of %d: the lr schedule changes from here on",
            path,
            config.epochs,
            saved["epochs"],
        )
