"""SLURM's own forms of a time limit and a memory size, read into what sbatch is given (``launcher:`` keys)."""

from __future__ import annotations

import re
from typing import Any

_SLURM_TIME = re.compile(r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
                         r"|(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)|(?P<mm>\d+):(?P<ss>\d+)|(?P<only>\d+))$")


def slurm_minutes(value: Any) -> Any:
    """SLURM's ``--time`` forms ("90", "1:30:00", "2-00:00:00", "45:00") → whole minutes (seconds round up)."""
    if isinstance(value, bool) or not isinstance(value, str):
        return value  # an int is minutes; pydantic checks the rest
    match = _SLURM_TIME.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a SLURM time: minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
    g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    seconds = (g.get("days", 0) * 86400 + (g.get("dh", 0) + g.get("h", 0)) * 3600
               + (g.get("dm", 0) + g.get("m", 0) + g.get("mm", 0) + g.get("only", 0)) * 60
               + g.get("ds", 0) + g.get("s", 0) + g.get("ss", 0))
    return -(-seconds // 60)


_MEMORY = re.compile(r"^(?P<n>\d+)\s*(?P<unit>[KMGT]?)B?$", re.IGNORECASE)


def slurm_memory(value: Any) -> Any:
    """``32G``, ``32GB``, ``500M`` or a number of GB → SLURM's ``--mem`` form (``32G``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return f"{value}G"
    match = _MEMORY.match(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a memory size: e.g. 32G, 500M or a number of GB")
    return f"{match['n']}{(match['unit'] or 'M').upper()}"  # SLURM reads a bare number as megabytes
