"""SLURM's own forms of the values a suite's ``launcher:`` section gives sbatch, checked before anything is written.

Every value becomes part of an ``#SBATCH`` line of a job script that a shell runs, and a suite is a shared file:
a value outside SLURM's grammar (a newline, a quote, ``;``, ``$(…)``) is refused, so no launcher value can add a
line or a word to the script. ``setup`` entries are the one place a suite asks for shell by design; each is
exactly one line of it.
"""

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


# partition, account and qos names: SLURM's names are letters, digits, '_', '-', '.'; partition and qos take a
# comma-separated list
_NAME_LIST = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-]*(,[A-Za-z0-9_.][A-Za-z0-9_.\-]*)*$")
# --constraint: features joined by & | , with counts (*N), brackets, parentheses and NOT (!)
_CONSTRAINT = re.compile(r"^[A-Za-z0-9_.\-&|,*\[\]()!:]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def slurm_names(value: Any) -> Any:
    """A partition, account or qos: SLURM's names (comma-separated where SLURM takes a list), nothing else."""
    if isinstance(value, str) and _NAME_LIST.match(value) is None:
        raise ValueError(f"{value!r} is not a SLURM name: letters, digits, '_', '-', '.' (a list: comma-separated)")
    return value


def slurm_constraint(value: Any) -> Any:
    """``--constraint``: features and SLURM's operators (``&``, ``|``, ``,``, ``*N``, ``[]``, ``()``, ``!``)."""
    if isinstance(value, str) and _CONSTRAINT.match(value) is None:
        raise ValueError(f"{value!r} is not a SLURM constraint: feature names joined by & | , with [] () *N !")
    return value


def shell_line(value: Any) -> Any:
    """A ``setup`` entry: one line of shell, as the suite wrote it (no line break or other control character)."""
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError(f"{value!r} is not one line: each setup entry is one shell line of the SLURM job "
                         "script (give several lines as several entries)")
    return value
