"""Where a study lives and who runs which trial.

The default storage is Optuna's journal file ``DIR/study.journal``: an append-only log, each
change one line written with ``fsync`` under a lock file, so ``kill -9`` loses at most the change
being made, and several processes (on one machine, or on several over NFS) share it without a
database server. ``--storage URL`` takes any database URL Optuna accepts (``sqlite:///f.db``,
``postgresql://...``, ``mysql+pymysql://...``) or ``journal:PATH``.

A trial being run is *claimed*: its process holds an advisory lock on ``DIR/trials/N.claim``
from the moment it asks for the trial until it reports it. The operating system releases the
lock when the process dies, however it dies, so a trial still marked running whose claim is
free was interrupted: the next worker in ``DIR`` takes it over and resumes its run directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from medknn.errors import ConfigError, DataError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one worker per study there
    fcntl = None  # type: ignore[assignment]

DEFAULT_STORAGE = "study.journal"
STUDY_LOCK = ".study.lock"
FINISH_LOCK = ".finish.lock"


def storage_description(url: str | None, out: Path) -> str:
    """The storage as a user reads it (a database URL without its password)."""
    if url is None:
        return str(out / DEFAULT_STORAGE)
    if "://" in url:
        from sqlalchemy.engine import make_url

        try:
            return make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - only for display; open_storage names the problem
            return url.split("@")[-1]
    return url.removeprefix("journal:")


def open_storage(url: str | None, out: Path) -> Any:
    """The Optuna storage of ``url`` (default: the journal file in ``out``); a damaged file or an
    unreachable database is a ``DataError`` naming it."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    where = storage_description(url, out)
    try:
        if url is not None and "://" in url:
            engine: dict[str, Any] = {}
            if url.startswith("sqlite"):
                engine = {"connect_args": {"timeout": 60}}  # several workers on one file
            return RDBStorage(url, engine_kwargs=engine)
        path = Path(url.removeprefix("journal:")) if url else out / DEFAULT_STORAGE
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, ImportError) as error:
        raise DataError(f"Cannot open the study storage {where}: {error}") from None
    except (ValueError, KeyError, TypeError, optuna.exceptions.StorageInternalError) as error:
        raise _damaged(where, error) from None
    except Exception as error:
        if _is_database_error(error):
            raise _damaged(where, error) from None
        raise


def _is_database_error(error: Exception) -> bool:
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return False
    return isinstance(error, SQLAlchemyError)


def _damaged(where: str, error: Exception) -> DataError:
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return DataError(
        f"The study storage {where} cannot be read ({first}); it is damaged or not an Optuna "
        "study. Move it away to start a new study (the finished trials' run directories stay "
        "usable with medknn evaluate/predict), or give another --storage."
    )


def load_study(storage: Any, name: str, where: str, *, pruner: Any = None) -> Any:
    """The study ``name`` in ``storage``, created if new (maximising the validation metric)."""
    import optuna

    try:
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize",
            load_if_exists=True,
            pruner=pruner,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise _damaged(where, error) from None
    except Exception as error:
        if _is_database_error(error):
            raise _damaged(where, error) from None
        raise


@contextmanager
def study_lock(out: Path, name: str = STUDY_LOCK) -> Iterator[None]:
    """Serialise the workers of ``out`` while one asks for, takes over or reports a trial (or,
    with ``FINISH_LOCK``, writes the ensemble and summary)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / name, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def claim_path(out: Path, number: int) -> Path:
    return out / "trials" / f"{number}.claim"


class Claim:
    """This process's hold on trial ``number``: a lock the OS drops when the process ends."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    @classmethod
    def take(cls, out: Path, number: int, *, create: bool) -> Claim | None:
        """The claim of trial ``number``, or None when another process holds it (or, unless
        ``create``, when this folder never claimed it: it runs elsewhere)."""
        path = claim_path(out, number)
        if not create and not path.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return None
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        return cls(path, handle)

    def release(self, *, finished: bool) -> None:
        """Let go of the trial; ``finished`` removes the claim (the trial needs no worker)."""
        if self._handle is None:
            return
        if finished:
            self.path.unlink(missing_ok=True)
        if fcntl is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def is_claimed_elsewhere(out: Path, number: int) -> bool:
    """True while another live process in ``out`` runs trial ``number``."""
    claim = Claim.take(out, number, create=False)
    if claim is None:
        return claim_path(out, number).exists()
    claim.release(finished=False)
    return False


def check_name(name: str) -> str:
    if not name or len(name) > 200 or any(c in name for c in "\n\r\0"):
        raise ConfigError(f"--study {name!r}: give a short one-line name, e.g. breastmnist-1.")
    return name
