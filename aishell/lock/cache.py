"""The download cache: every tarball fetched once, integrity-checked, shared by every env.

Files are stored content-addressed by their SRI integrity (npm's ``integrity`` field,
``sha512-<base64>``), so the same tarball named by two locks or two registries is one
file, and a file's name says what its content must hash to::

    <cache>/tarballs/sha512/3f/3f9a…e1      the tarball (read-only)
    <cache>/tarballs/sha512/3f/3f9a…e1.lock the per-entry lock (filelock)

A download goes to a temporary file beside its final place, is hashed while it streams,
and is moved into place with ``os.replace`` only after the integrity matched — a
crash leaves a stray temp file, never a wrong entry. Concurrent fetches of one entry
download it once (the second waits on the entry's lock, then finds it). A mismatch is
an error naming the package; aishell never silently downloads again.

Network access honours ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` and trusts the CA
bundle :func:`aishell.certs.find_bundle` finds (a TLS-intercepting proxy's CA).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from aishell import certs
from aishell.errors import AishellError
from aishell.paths import Paths

# Strongest first: SRI says to check only the strongest algorithm a string names.
ALGORITHMS = ("sha512", "sha384", "sha256", "sha1")
_CHUNK = 1 << 16
USER_AGENT = "aishell (download cache)"
RETRIES = 3

ProgressHook = Callable[[int, int | None], None]


class IntegrityError(AishellError):
    """Downloaded or cached content does not match the integrity the lock records."""


class DownloadError(AishellError):
    """A tarball could not be fetched (network, HTTP status, offline and missing)."""


@dataclass(frozen=True)
class Integrity:
    """The strongest algorithm an SRI string names and the digests accepted for it."""

    algorithm: str
    digests: tuple[bytes, ...]

    @classmethod
    def parse(cls, sri: str, name_for_errors: str = "") -> Integrity:
        """Parse ``sha512-<b64> [sha1-<b64> …]`` (options after ``?`` are ignored)."""
        found: dict[str, list[bytes]] = {}
        for token in sri.split():
            algorithm, _, rest = token.partition("-")
            algorithm = algorithm.lower()
            if algorithm not in ALGORITHMS or not rest:
                continue
            try:
                digest = base64.b64decode(rest.split("?", 1)[0], validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(digest) == hashlib.new(algorithm).digest_size:
                found.setdefault(algorithm, []).append(digest)
        for algorithm in ALGORITHMS:
            if algorithm in found:
                return cls(algorithm, tuple(found[algorithm]))
        what = f" of {name_for_errors}" if name_for_errors else ""
        raise IntegrityError(
            f"the integrity{what} is not a usable SRI hash: {sri!r}",
            hint="the lock may be corrupted: run `aishell lock` to regenerate it",
        )

    @property
    def key(self) -> str:
        """``<algorithm>/<first hex digest>``: where the content lives in the cache."""
        return f"{self.algorithm}/{self.digests[0].hex()}"

    def sri(self) -> str:
        return f"{self.algorithm}-{base64.b64encode(self.digests[0]).decode()}"

    def matches(self, digest: bytes) -> bool:
        return digest in self.digests


def ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """A verifying TLS context trusting ``ca_bundle`` (default: the detected bundle)."""
    bundle = ca_bundle if ca_bundle is not None else certs.find_bundle()
    context = ssl.create_default_context()
    if bundle is not None:
        context.load_verify_locations(cafile=str(bundle))
    return context


def _opener(ca_bundle: Path | None) -> urllib.request.OpenerDirector:
    # ProxyHandler() reads HTTP(S)_PROXY / NO_PROXY from the environment at this moment.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(),
        urllib.request.HTTPSHandler(context=ssl_context(ca_bundle)),
    )


class DownloadCache:
    """The content-addressed tarball cache rooted at ``root`` (``paths.downloads``).

    Args:
        root: the cache directory (created on first write).
        ca_bundle: CA bundle to trust for HTTPS (default: :func:`certs.find_bundle`).
        timeout: seconds without data before a download is abandoned.
    """

    def __init__(self, root: Path, *, ca_bundle: Path | None = None,
                 timeout: float = 60.0) -> None:
        self.root = root
        self.ca_bundle = ca_bundle
        self.timeout = timeout

    def path_for(self, integrity: str | Integrity) -> Path:
        """Where the content with ``integrity`` lives (whether or not it is there)."""
        parsed = integrity if isinstance(integrity, Integrity) else Integrity.parse(integrity)
        hex_digest = parsed.digests[0].hex()
        return self.root / parsed.algorithm / hex_digest[:2] / hex_digest

    def has(self, integrity: str | Integrity) -> bool:
        return self.path_for(integrity).is_file()

    def fetch(
        self,
        url: str,
        integrity: str,
        name_for_errors: str,
        *,
        offline: bool = False,
        on_progress: ProgressHook | None = None,
    ) -> Path:
        """The cached file for ``integrity``, downloading ``url`` first when missing.

        Args:
            url: the tarball URL (``https://``, ``http://`` or ``file://``).
            integrity: the SRI string the content must match.
            name_for_errors: the package (``name@version``) named in error messages.
            offline: never touch the network; a missing entry is an error.
            on_progress: called with (bytes so far, total or None) while downloading.

        Raises:
            IntegrityError: the download (or the cached file) does not match ``integrity``.
            DownloadError: offline and missing, HTTP error, or network failure.
        """
        parsed = Integrity.parse(integrity, name_for_errors)
        final = self.path_for(parsed)
        if final.is_file():
            self._check_cached(final, parsed, name_for_errors)
            return final
        if offline:
            raise DownloadError(
                f"{name_for_errors} is not in the download cache and --offline forbids fetching it",
                hint="run `aishell sync` once with network access to fill the cache",
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock"):
            # Someone else may have fetched it while we waited for the lock.
            if final.is_file():
                self._check_cached(final, parsed, name_for_errors)
                return final
            self._download(url, parsed, final, name_for_errors, on_progress)
        return final

    def _check_cached(self, path: Path, integrity: Integrity, name: str) -> None:
        digest = _file_digest(path, integrity.algorithm)
        if not integrity.matches(digest):
            raise IntegrityError(
                f"the cached tarball of {name} is corrupted: {path} has "
                f"{integrity.algorithm}-{base64.b64encode(digest).decode()}, "
                f"the lock says {integrity.sri()}",
                hint=f"delete {path} and run again to download it anew",
            )

    def _download(self, url: str, integrity: Integrity, final: Path, name: str,
                  on_progress: ProgressHook | None) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=final.name + ".", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = self._stream(url, out, integrity.algorithm, name, on_progress)
                out.flush()
                os.fsync(out.fileno())
            if not integrity.matches(digest):
                raise IntegrityError(
                    f"integrity check failed for {name}: {url} delivered "
                    f"{integrity.algorithm}-{base64.b64encode(digest).decode()}, "
                    f"the lock says {integrity.sri()}",
                    hint="the registry (or a proxy) served different content than when the "
                    "lock was made; if the new content is expected, run `aishell lock --upgrade-"
                    f"package {name.rsplit('@', 1)[0]}`",
                )
            tmp.chmod(0o444)
            tmp.replace(final)  # atomic (os.replace)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _stream(self, url: str, out: BinaryIO, algorithm: str, name: str,
                on_progress: ProgressHook | None) -> bytes:
        """Download ``url`` into ``out`` (truncating it first on each attempt)."""
        opener = _opener(self.ca_bundle)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
        last: Exception | None = None
        for attempt in range(RETRIES):
            out.seek(0)
            out.truncate()
            hasher = hashlib.new(algorithm)
            try:
                with opener.open(request, timeout=self.timeout) as resp:
                    length = resp.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    done = 0
                    while chunk := resp.read(_CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
                return hasher.digest()
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise DownloadError(
                        f"cannot download {name}: {url} answered HTTP {exc.code} {exc.reason}",
                        hint="check the registry URL and your credentials, or re-lock",
                    ) from exc
                last = exc
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.5 * (attempt + 1))
        reason = getattr(last, "reason", None) or last
        raise DownloadError(
            f"cannot download {name} from {url}: {reason}",
            hint="check the network, HTTPS_PROXY/HTTP_PROXY, and the CA bundle "
            "(`aishell check`); `aishell sync --offline` uses only the cache",
        )


def _file_digest(path: Path, algorithm: str) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, algorithm).digest()


def fetch(url: str, integrity: str, name_for_errors: str, *, paths: Paths,
          offline: bool = False, on_progress: ProgressHook | None = None) -> Path:
    """:meth:`DownloadCache.fetch` on the cache under ``paths.downloads``."""
    return DownloadCache(paths.downloads).fetch(
        url, integrity, name_for_errors, offline=offline, on_progress=on_progress
    )
