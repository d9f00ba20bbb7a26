"""Download a public data file once into the user's cache, checked against a pinned SHA-256.

The examples fetch their public datasets with this on first use (the Keras ones through
``keras.utils.get_file``, which does the same). A file is written under a temporary name,
hashed while it streams, and renamed into place only when its SHA-256 matches the pin, so
the cache never holds a partial or wrong file. Every failure raises :class:`DownloadError`
with a one-line message that says what was wanted and how to get it by hand.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60


class DownloadError(RuntimeError):
    """The file could not be had: no network, an HTTP error, or a checksum that differs."""


def cache_dir() -> str:
    """``$NLP_COMPRESS_CACHE``, else ``$XDG_CACHE_HOME/nlp-compress``, else ``~/.cache/nlp-compress``."""
    if os.environ.get("NLP_COMPRESS_CACHE"):
        return os.environ["NLP_COMPRESS_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nlp-compress")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str, filename: str | None = None, folder: str | None = None,
          progress: bool = True) -> str:
    """The path of ``url``'s file in the cache, downloaded first if it is not there yet.

    Args:
        url: where the file is public.
        sha256: the file's pinned SHA-256 (hex); a cached file is checked against it too.
        filename: the name in the cache (default: the URL's last part).
        folder: the cache folder (default: :func:`cache_dir`).
        progress: print one line before downloading and one when done (to stderr).

    Raises:
        DownloadError: one line naming the URL and the reason.
    """
    import sys

    folder = folder or cache_dir()
    path = os.path.join(folder, filename or url.rstrip("/").rsplit("/", 1)[-1])
    if os.path.isfile(path):
        if sha256_of(path) == sha256:
            return path
        os.remove(path)  # a damaged or outdated copy: fetch it again
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.part-{os.getpid()}"
    digest = hashlib.sha256()
    if progress:
        print(f"downloading {url} to {folder} (once) ...", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(temporary, "wb") as out:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise DownloadError(f"{url}: the download's SHA-256 is {digest.hexdigest()}, not the pinned {sha256}; "
                                "nothing was kept")
        os.replace(temporary, path)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = (f"HTTP {error.code} {error.reason}" if isinstance(error, urllib.error.HTTPError)
                  else getattr(error, "reason", None) or error)
        raise DownloadError(f"cannot download {url}: {reason}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    if progress:
        print(f"saved {path} ({os.path.getsize(path):,} bytes, SHA-256 checked)", file=sys.stderr, flush=True)
    return path


def unpack_member(archive: str | os.PathLike, member: str, sha256: str | None = None) -> str:
    """Extract one ``member`` of a zip ``archive`` beside it (once) and return its path."""
    import zipfile

    target = os.path.join(os.path.dirname(os.fspath(archive)), os.path.basename(member))
    if os.path.isfile(target) and (sha256 is None or sha256_of(target) == sha256):
        return target
    temporary = f"{target}.part-{os.getpid()}"
    try:
        with zipfile.ZipFile(archive) as zipped, zipped.open(member) as source, open(temporary, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK_BYTES)
        if sha256 is not None and sha256_of(temporary) != sha256:
            raise DownloadError(f"{archive}: {member} does not have the pinned SHA-256 {sha256}")
        os.replace(temporary, target)
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise DownloadError(f"cannot unpack {member} from {archive}: {error}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return target
