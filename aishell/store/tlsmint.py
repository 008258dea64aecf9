"""A throwaway certificate authority for recording and replaying HTTPS downloads.

An install script's HTTPS download is end-to-end encrypted: a forward proxy sees only the
host. To record (at lock time) and replay (at population) it, aishell's proxy terminates
TLS itself with a certificate for that host signed by this CA, which only the install
scripts' container trusts (``NODE_EXTRA_CA_CERTS`` and ``SSL_CERT_FILE`` point at it for
those scripts alone). A fresh CA is made for every lock or population run, valid two days,
its key kept in a private temporary directory and deleted with it: it can never vouch for
anything outside that one run.

Certificates are made with the ``openssl`` command (P-256 keys, ~10 ms each).
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from aishell import process
from aishell.errors import AishellError

DAYS = "2"
_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


class Minter:
    """Mints a certificate per host, signed by a CA made in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = directory / "ca.pem"
        # The CA's key never enters a container: only the certificates in ``directory`` do.
        self._key_dir = Path(tempfile.mkdtemp(prefix="aishell-ca-"))
        self._ca_key = self._key_dir / "ca.key"
        self._lock = threading.Lock()
        self._leaves: dict[str, tuple[Path, Path]] = {}
        _openssl("req", "-x509", *_CURVE, "-keyout", self._ca_key, "-out", self.ca,
                 "-days", DAYS, "-subj", "/CN=aishell install-script recorder",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.ca.chmod(0o644)

    def close(self) -> None:
        shutil.rmtree(self._key_dir, ignore_errors=True)

    def __enter__(self) -> Minter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def leaf(self, host: str) -> tuple[Path, Path]:
        """(certificate, key) for ``host`` (a name or an IP address)."""
        with self._lock:
            if host in self._leaves:
                return self._leaves[host]
            stem = self.directory / f"leaf-{len(self._leaves)}"
            cert, key = stem.with_suffix(".pem"), stem.with_suffix(".key")
            csr, ext = self._key_dir / f"{stem.name}.csr", self._key_dir / f"{stem.name}.ext"
            try:
                san = f"IP:{ipaddress.ip_address(host.strip('[]'))}"
            except ValueError:
                san = f"DNS:{host}"
            ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
                           "basicConstraints=CA:FALSE\n", encoding="utf-8")
            _openssl("req", *_CURVE, "-keyout", key, "-out", csr, "-subj", "/CN=" + host[:64])
            _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self._ca_key,
                     "-set_serial", str(secrets.randbits(63)), "-days", DAYS,
                     "-extfile", ext, "-out", cert)
            cert.chmod(0o644)
            key.chmod(0o644)  # read by the replay server in the container (another UID)
            self._leaves[host] = (cert, key)
            return cert, key


def _openssl(*args: object) -> None:
    try:
        process.run(["openssl", *(str(a) for a in args)], timeout=60)
    except AishellError as exc:
        raise AishellError(f"could not make a certificate to record HTTPS downloads: {exc}",
                           hint="install the `openssl` command (scripts/provision.sh does)") from exc
