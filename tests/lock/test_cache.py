"""The download cache: fetch once, verify SRI integrity, atomic, concurrent-safe, offline."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aishell.lock.cache import DownloadCache, DownloadError, Integrity, IntegrityError, fetch
from aishell.paths import default_paths
from tests import fixtures_store

http_server = fixtures_store.http_server
no_proxy_env = fixtures_store.no_proxy_env

pytestmark = pytest.mark.usefixtures("no_proxy_env")

BODY = b"pretend this is a package tarball\n" * 1000


def sri(data: bytes, algorithm: str = "sha512") -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def test_integrity_parse_takes_the_strongest_algorithm():
    both = f"{sri(b'x', 'sha1')} {sri(b'x', 'sha512')}"
    parsed = Integrity.parse(both)
    assert parsed.algorithm == "sha512"
    assert parsed.matches(hashlib.sha512(b"x").digest())
    assert not parsed.matches(hashlib.sha512(b"y").digest())
    assert Integrity.parse(sri(b"x", "sha1")).algorithm == "sha1"
    assert Integrity.parse(sri(b"x", "sha256")).key.startswith("sha256/")


def test_integrity_parse_rejects_garbage_naming_the_package():
    with pytest.raises(IntegrityError, match=r"of left-pad@1\.0\.0"):
        Integrity.parse("md5-abc", "left-pad@1.0.0")
    with pytest.raises(IntegrityError):
        Integrity.parse("sha512-tooshort")


def test_fetch_downloads_once_and_stores_content_addressed(tmp_path, http_server):
    http_server.files["/pkg.tgz"] = BODY
    cache = DownloadCache(tmp_path / "tarballs")
    integrity = sri(BODY)
    first = cache.fetch(http_server.url("/pkg.tgz"), integrity, "pkg@1.0.0")
    second = cache.fetch(http_server.url("/pkg.tgz"), integrity, "pkg@1.0.0")
    assert first == second == cache.path_for(integrity)
    assert first.read_bytes() == BODY
    assert first.relative_to(tmp_path / "tarballs").parts[0] == "sha512"
    assert http_server.hits("/pkg.tgz") == 1
    assert not os.access(first, os.W_OK) or os.geteuid() == 0  # stored read-only
    assert first.stat().st_mode & 0o222 == 0


def test_sha1_and_sha256_integrity_work(tmp_path, http_server):
    http_server.files["/a.tgz"] = b"a"
    cache = DownloadCache(tmp_path)
    for algorithm in ("sha1", "sha256"):
        path = cache.fetch(http_server.url("/a.tgz"), sri(b"a", algorithm), "a@1")
        assert path.read_bytes() == b"a"
        assert path.parent.parent.name == algorithm


def test_mismatch_is_an_error_naming_the_package_and_stores_nothing(tmp_path, http_server):
    http_server.files["/evil.tgz"] = b"tampered"
    cache = DownloadCache(tmp_path)
    integrity = sri(BODY)
    with pytest.raises(IntegrityError, match=r"integrity check failed for evil@2\.0\.0"):
        cache.fetch(http_server.url("/evil.tgz"), integrity, "evil@2.0.0")
    assert not cache.has(integrity)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
    # Asking again is the same error, never a silent retry that "fixes" it.
    with pytest.raises(IntegrityError):
        cache.fetch(http_server.url("/evil.tgz"), integrity, "evil@2.0.0")
    assert http_server.hits("/evil.tgz") == 2


def test_corrupted_cache_entry_is_an_error_not_a_redownload(tmp_path, http_server):
    http_server.files["/pkg.tgz"] = BODY
    cache = DownloadCache(tmp_path)
    path = cache.fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1.0.0")
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    with pytest.raises(IntegrityError, match=r"cached tarball of pkg@1\.0\.0 is corrupted") as exc:
        cache.fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1.0.0")
    assert str(path) in (exc.value.hint or "")
    assert http_server.hits("/pkg.tgz") == 1


def test_offline_fails_clearly_when_missing_and_works_when_cached(tmp_path, http_server):
    http_server.files["/pkg.tgz"] = BODY
    cache = DownloadCache(tmp_path)
    with pytest.raises(DownloadError, match=r"pkg@1\.0\.0 is not in the download cache"):
        cache.fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1.0.0", offline=True)
    assert http_server.requests == []
    cache.fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1.0.0")
    path = cache.fetch("http://127.0.0.1:9/unreachable.tgz", sri(BODY), "pkg@1.0.0", offline=True)
    assert path.read_bytes() == BODY
    assert http_server.hits("/pkg.tgz") == 1


def test_http_404_names_the_package(tmp_path, http_server):
    with pytest.raises(DownloadError, match=r"cannot download gone@1\.0\.0: .* HTTP 404"):
        DownloadCache(tmp_path).fetch(http_server.url("/gone.tgz"), sri(b"x"), "gone@1.0.0")


def test_unreachable_server_is_a_download_error(tmp_path, monkeypatch):
    monkeypatch.setattr("aishell.lock.cache.time.sleep", lambda _s: None)
    with pytest.raises(DownloadError, match=r"cannot download x@1 from http://127\.0\.0\.1:9/"):
        DownloadCache(tmp_path, timeout=2).fetch("http://127.0.0.1:9/x.tgz", sri(b"x"), "x@1")


def test_progress_hook_sees_every_byte(tmp_path, http_server):
    http_server.files["/pkg.tgz"] = BODY
    seen: list[tuple[int, int | None]] = []
    DownloadCache(tmp_path).fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1",
                                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(BODY), len(BODY))


def test_concurrent_fetches_download_once(tmp_path, http_server):
    http_server.files["/slow.tgz"] = BODY
    http_server.delay = 0.5
    cache = DownloadCache(tmp_path)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(cache.fetch(http_server.url("/slow.tgz"), sri(BODY), "slow@1"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and results[0].read_bytes() == BODY
    assert http_server.hits("/slow.tgz") == 1


def test_concurrent_processes_download_once(tmp_path, http_server):
    http_server.files["/slow.tgz"] = BODY
    http_server.delay = 0.5
    code = (
        "import sys; from pathlib import Path; from aishell.lock.cache import DownloadCache;"
        "print(DownloadCache(Path(sys.argv[1])).fetch(sys.argv[2], sys.argv[3], 'slow@1'))"
    )
    argv = [sys.executable, "-c", code, str(tmp_path), http_server.url("/slow.tgz"), sri(BODY)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1
    assert http_server.hits("/slow.tgz") == 1


def test_proxy_from_the_environment_is_used(tmp_path, http_server, monkeypatch):
    # The local server plays the proxy: it receives the absolute URL as the request path.
    http_server.files["http://registry.invalid/pkg.tgz"] = BODY
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{http_server.port}")
    path = DownloadCache(tmp_path).fetch("http://registry.invalid/pkg.tgz", sri(BODY), "pkg@1")
    assert path.read_bytes() == BODY
    assert http_server.requests == ["http://registry.invalid/pkg.tgz"]


def test_no_proxy_bypasses_the_proxy(tmp_path, http_server, monkeypatch):
    http_server.files["/pkg.tgz"] = BODY
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    path = DownloadCache(tmp_path).fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1")
    assert path.read_bytes() == BODY


def test_ssl_context_trusts_the_configured_bundle(tmp_path):
    from aishell.lock.cache import ssl_context

    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    context = ssl_context(bundle)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert context.cert_store_stats()["x509_ca"] > 0


def test_module_fetch_uses_the_cache_under_paths(tmp_path, http_server):
    http_server.files["/pkg.tgz"] = BODY
    paths = default_paths()
    path = fetch(http_server.url("/pkg.tgz"), sri(BODY), "pkg@1", paths=paths)
    assert path.is_relative_to(paths.downloads)
