"""SIGTERM (SLURM's time limit, ``kill``) stops a command as Ctrl-C does: the records so far are kept and the
terminal says how to resume, instead of the process ending without a word."""

from __future__ import annotations

import signal

_TERMINATED: list[int] = []  # set by the handler: the interrupt that follows was a SIGTERM


def stop_on_sigterm() -> None:
    """Turn SIGTERM into a plain ``KeyboardInterrupt`` in the main thread (a subclass would read as a model's own
    failure to the runner, which stops only on the real one)."""

    def handler(signum: int, frame: object) -> None:
        _TERMINATED.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def terminated() -> bool:
    """Whether a SIGTERM arrived since ``stop_on_sigterm``."""
    return bool(_TERMINATED)
