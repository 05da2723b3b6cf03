"""Download a file with an md5 check; the destination only ever holds a complete, verified file."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from medknn.errors import DataError

_CHUNK = 1 << 20


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` (http(s) or file://) to ``dest``; a wrong md5 deletes it and raises."""
    dest = Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with Progress(
                TextColumn(f"downloading {dest.name}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                disable=not progress,
                transient=True,
            ) as bar:
                task = bar.add_task("download", total=total)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if md5 is not None and actual != md5.lower():
            raise DataError(
                f"download of {url} is corrupt: md5 {actual}, expected {md5}; the file was "
                "deleted, try again or fetch it by hand"
            )
        os.replace(tmp_name, dest)
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        raise DataError(
            f"cannot download {url} to {dest}: {error}. Without internet, copy the file to {dest} "
            "by hand"
        ) from error
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest
