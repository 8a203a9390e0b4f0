"""How a model runs, by name: autocast dtype, memory format and torch.compile mode. Imports no torch, so the
suite's timing sections extend ``Mode`` (``harness.config.schema``); ``harness.measure.device`` maps the names to
torch.

A suite may also list modes by their label (``parse_mode``): ``fp32`` (eager, the default), ``bf16``,
``channels_last``, ``compile`` or ``compile:max-autotune``, combined with ``+`` or ``, `` (``bf16+channels_last``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import field_validator

from harness.settings import Settings

Dtype = Literal["fp32", "bf16", "fp16"]
DTYPE_NAMES: tuple[str, ...] = get_args(Dtype)
DEFAULT_DTYPE: Dtype = "fp32"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class Mode(Settings):
    """How the model runs: autocast dtype, memory format and torch.compile mode (None = eager; else one of
    ``COMPILE_MODES``)."""

    dtype: Dtype = DEFAULT_DTYPE
    channels_last: bool = False
    compile: str | None = None

    @field_validator("compile", check_fields=False)  # a section that is eager only has no compile field
    @classmethod
    def _known_compile_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in COMPILE_MODES:
            raise ValueError(f"unknown torch.compile mode {value!r}; use one of {', '.join(COMPILE_MODES)}")
        return value

    @property
    def label(self) -> str:
        """e.g. ``fp32`` or ``bf16, channels_last, compile:default`` (report and gate headings)."""
        return mode_label(self.dtype, channels_last=self.channels_last, compile=self.compile)

    @property
    def token(self) -> str:
        """The mode in a task id: ``fp32``, ``bf16+channels_last+compile-default`` (no ``:`` or spaces)."""
        parts = [self.dtype] + (["channels_last"] if self.channels_last else []) \
            + ([f"compile-{self.compile}"] if self.compile else [])
        return "+".join(parts)


EAGER = "fp32"  # the label of eager fp32 (``Mode().label``): the mode every other one is compared with


def mode_label(dtype: Any, *, channels_last: Any = False, compile: Any = None) -> str:
    """The mode's label from record fields (which may be missing or of older forms)."""
    parts = [str(dtype or DEFAULT_DTYPE)]
    if channels_last:
        parts.append("channels_last")
    if compile not in (None, False, "", "none"):
        parts.append("compile" if compile is True else f"compile:{compile}")
    return ", ".join(parts)


_WORDS = ("fp32", "bf16", "fp16", "eager", "channels_last", "compile", "compile:<mode>")


def parse_mode(text: str) -> Mode:
    """A mode from its label: parts joined by ``+`` or ``,`` (``bf16+channels_last``, ``compile:max-autotune``,
    ``fp32, channels_last``); ``eager`` alone is fp32. ``ValueError`` names the part it does not know."""
    fields: dict[str, Any] = {}
    parts = [p.strip() for p in text.replace(",", "+").split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"mode {text!r} is empty or has an empty part; parts: {', '.join(_WORDS)}")
    for part in parts:
        value: str | bool
        if part in DTYPE_NAMES:
            key, value = "dtype", part
        elif part == "eager":
            continue
        elif part == "channels_last":
            key, value = "channels_last", True
        elif part == "compile" or part.startswith("compile:"):
            key, value = "compile", part.partition(":")[2] or "default"
            if value not in COMPILE_MODES:
                raise ValueError(f"mode {text!r}: unknown torch.compile mode {value!r}; use one of "
                                 f"{', '.join(COMPILE_MODES)}")
        else:
            raise ValueError(f"mode {text!r}: unknown part {part!r}; parts: {', '.join(_WORDS)} (joined with '+')")
        if key in fields:
            raise ValueError(f"mode {text!r} sets its {key} twice")
        fields[key] = value
    return Mode(**fields)
