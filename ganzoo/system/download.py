"""Explicit, checksummed, cached downloads (datasets, Inception weights) that fail clearly offline.

Nothing in ganzoo reaches the network unless a component needs a file that is neither given as a local
path nor already in the cache. ``GANZOO_OFFLINE=1`` forbids downloads altogether (the tests set it).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .files import atomic_write

CACHE_ENV = "GANZOO_CACHE"
OFFLINE_ENV = "GANZOO_OFFLINE"


class DownloadError(RuntimeError):
    """A file could not be obtained or did not match its checksum."""


def cache_dir(subdir: str = "") -> Path:
    """``$GANZOO_CACHE`` or ``~/.cache/ganzoo``, plus ``subdir``; created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganzoo")
    path = root / subdir if subdir else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_file(path: str | Path, what: str, fix: str) -> Path:
    """``path`` with ``~`` expanded, after checking that it is a file: the one check of every user-given weight file.

    Args:
        path: the file the user gave (an option, a hyperparameter or an environment variable).
        what: a human name for the error message ("Inception-v3 FID weights").
        fix: how to get the right file, appended to the message.

    Raises:
        DownloadError: ``path`` is not a file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DownloadError(f"{what}: the local file {path} does not exist. {fix}")
    return path


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str | None, what: str) -> str:
    """Check ``path`` against a full SHA-256 or a prefix of one (torch.hub names files by prefix)."""
    actual = sha256_of(path)
    if sha256 and not actual.startswith(sha256.lower()):
        raise DownloadError(
            f"{what}: {path} has SHA-256 {actual[:16]}..., expected {sha256[:16]}... "
            "The file is corrupt or a different version; delete it and download it again, or give the right file."
        )
    return actual


def fetch(
    url: str,
    filename: str,
    *,
    sha256: str | None,
    what: str,
    subdir: str = "",
    local_path: str | Path | None = None,
    env_var: str | None = None,
) -> Path:
    """Return a verified local copy of ``url``.

    Order: ``local_path`` (or ``$env_var``) if given, else the cache, else a download with a progress bar
    into the cache (written to a temporary name first, so an interrupted download never looks complete).

    Args:
        url: where the file is published (``http(s)://`` or ``file://``).
        filename: name of the file in the cache.
        sha256: full hex digest or a prefix of it; ``None`` skips the check (only for files without one).
        what: a human name for error messages ("Inception-v3 FID weights").
        subdir: folder inside the cache.
        local_path: a file the user already has; used as is after the checksum.
        env_var: environment variable that may hold ``local_path``.
    """
    local = local_path or (os.environ.get(env_var) if env_var else None)
    if local:
        path = local_file(local, what, f"Give the path of the downloaded {filename}.")
        verify(path, sha256, what)
        return path
    target = cache_dir(subdir) / filename
    if target.is_file():
        verify(target, sha256, what)
        return target
    hint = (f"Download {url} yourself and put it at {target}"
            + (f", or set {env_var}=/path/to/{filename}" if env_var else "") + ".")
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DownloadError(f"{what} is not in the cache and downloads are disabled ({OFFLINE_ENV} is set). {hint}")

    def fetch(tmp: Path) -> None:
        _download(url, tmp, what)
        verify(tmp, sha256, what)  # a file that fails its hash never reaches the cache

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadError(f"Could not download {what} from {url} ({exc}). "
                            f"If this machine is offline: {hint}") from exc
    return target


def _download(url: str, dest: Path, what: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {what}", leave=False) as bar:
            while block := response.read(1 << 20):
                out.write(block)
                bar.update(len(block))
