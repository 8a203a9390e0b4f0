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
# What a resume reads from a checkpoint (``harness.train.loop``): a file without them is not one.
RESTORED = frozenset({"config", "model", "optimizer", "scheduler", "rng", "history", "epoch"})


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format tag) atomically: a crash mid-write leaves the previous one intact."""
    write_atomic(Path(path), lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle))


def load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint at ``path`` checked against ``config``, or None when there is none (a fresh start)."""
    path = Path(path)
    if not path.is_file():
        log.info("no checkpoint at %s; starting from epoch 1", path)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types for a truncated or foreign file
        return _set_aside(path, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or not RESTORED <= set(state):
        return _set_aside(path, f"holds a {type(state).__name__} without {', '.join(sorted(RESTORED))}, not a "
                                "training checkpoint")
    check_resumable(state, config, path)
    return state


def _set_aside(path: Path, reason: str) -> None:
    """A checkpoint that cannot be read (a disk that filled, a copy cut short) is renamed, never deleted, and the
    training starts afresh: otherwise every resume of the run would fail on it the same way."""
    kept = path.with_name(path.name + ".corrupt")
    number = 1
    while kept.exists():
        number += 1
        kept = path.with_name(f"{path.name}.corrupt{number}")
    try:
        path.rename(kept)
    except FileNotFoundError:  # another rank set it aside first
        pass
    log.warning("checkpoint %s cannot be read (%s): moved to %s; training starts again from epoch 1",
                path, reason, kept.name)
    return None


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
