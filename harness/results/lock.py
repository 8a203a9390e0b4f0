"""One process at a time per run dir: ``RunLock`` is an exclusive lock (``filelock``) held while a run, a
resume or a merge writes into the dir, with a note of who holds it, so a second process is refused with one
line naming the holder instead of recording every task a second time."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from harness.errors import ResultsError, printable
from harness.fileio import write_json_atomic

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.holder.json"


class RunLock:
    """``with RunLock(run_dir, argv=sys.argv):`` — raises ``ResultsError`` if another process holds it."""

    def __init__(self, run_dir: Path, *, argv: list[str], utc: str = "") -> None:
        self.run_dir = Path(run_dir)
        self.argv = list(argv)
        self.utc = utc
        self._lock = FileLock(str(self.run_dir / LOCK_FILE))

    def _holder(self) -> str:
        try:
            info = json.loads((self.run_dir / HOLDER_FILE).read_text(encoding="utf-8"))
            return printable(f"process {info['pid']} on {info['host']} since {info['since'] or '?'} "
                             f"({' '.join(map(str, info['argv']))})")
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ResultsError(
                f"{self.run_dir} is in use by {self._holder()}; wait for it to end, or resume into another copy"
            ) from None
        write_json_atomic(self.run_dir / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                                       "since": self.utc, "argv": self.argv})
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        (self.run_dir / HOLDER_FILE).unlink(missing_ok=True)
        self._lock.release()
