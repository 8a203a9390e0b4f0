"""How a model runs, by name: autocast dtype, memory format and torch.compile mode. Imports no torch, so the
suite's timing sections extend ``Mode`` (``harness.config.schema``); ``harness.measure.device`` maps the names to
torch."""

from __future__ import annotations

from typing import Any, Literal, get_args

from harness.settings import Settings

Dtype = Literal["fp32", "bf16", "fp16"]
DTYPE_NAMES: tuple[str, ...] = get_args(Dtype)
DEFAULT_DTYPE: Dtype = "fp32"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class Mode(Settings):
    """How the model runs: autocast dtype, memory format and torch.compile mode (None = eager; a mode name is
    checked against ``COMPILE_MODES`` when the model is prepared)."""

    dtype: Dtype = DEFAULT_DTYPE
    channels_last: bool = False
    compile: str | None = None

    @property
    def label(self) -> str:
        """e.g. ``fp32`` or ``bf16, channels_last, compile:default`` (report and gate headings)."""
        return mode_label(self.dtype, channels_last=self.channels_last, compile=self.compile)


def mode_label(dtype: Any, *, channels_last: Any = False, compile: Any = None) -> str:
    """The mode's label from record fields (which may be missing or of older forms)."""
    parts = [str(dtype or DEFAULT_DTYPE)]
    if channels_last:
        parts.append("channels_last")
    if compile not in (None, False, "", "none"):
        parts.append("compile" if compile is True else f"compile:{compile}")
    return ", ".join(parts)
