"""One process at a time per run directory: two processes resuming the same run would both
write its checkpoints and history."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medknn.errors import RunLockedError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are then not guarded
    fcntl = None  # type: ignore[assignment]


def lock_path(run: Path) -> Path:
    """The lock file sits beside the run, not in it, so that a new run directory stays empty
    until the run has checked its data and config."""
    return run.parent / f".{run.name}.lock"


@contextmanager
def run_lock(run: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run`` while the block trains it; raise ``RunLockedError`` at
    once if another process holds it. The operating system releases the lock when its process
    ends, however it ends, so a killed run never leaves a stale lock behind."""
    # The real path: a symlink to the run (or "a/../run") must meet the same lock.
    run = Path(run).resolve()
    if fcntl is None:
        yield
        return
    path = lock_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown process"
            raise RunLockedError(
                f"{run} is being trained by another process ({owner}). Wait for it to finish "
                "(running the same command then loads the finished run), or train into "
                "another --out."
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"PID {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
