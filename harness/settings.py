"""What settings are made of: a frozen pydantic base that refuses unknown keys (``Settings``), and bounded values.

The measurement and training configs (``TimingConfig``, ``Mode``, ``TrainConfig``) are ``Settings``, and the
suite's sections (``harness.config.schema``) extend them: each setting, its default and its bounds are written
once, on the config that uses it, and a suite validates them as a notebook's call does. Imports no torch.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Upper bounds no real suite comes near: a typo (or a hostile file) must not plan 10^9 tasks, warm up forever or
# pass a seed the RNGs refuse mid-run. Integers are strict: `true` is not 1 and `2.5` is not 2.
MAX_COUNT = 1_000_000  # samples, images, batches per epoch
MAX_BATCH = 65_536
MAX_SECONDS = 86_400.0  # one timing window
SEED_RANGE = (0, 2**32 - 1)  # what numpy's and torch's seeding accept


class Settings(BaseModel):
    """Frozen (hashable, safe to share), and an unknown key is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def Bounded(low: int, high: int) -> Any:  # noqa: N802 - a type, as pydantic's conint
    return Annotated[int, Field(ge=low, le=high, strict=True)]


PositiveInt = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]
# Spelled out (not Bounded(...)) so that a type checker reads them as the int they are.
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH, strict=True)]
Seed = Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1], strict=True)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
