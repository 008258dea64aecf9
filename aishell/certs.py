"""Finding the CA bundle that registries and sandboxes must trust.

Behind a TLS-intercepting proxy (common in companies) nothing inside a container can
reach npm unless it trusts the proxy's CA. aishell mounts one bundle read-only into
every container that talks to the network and points Node.js, OpenSSL, Python and
curl at it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aishell import inputs

ENV_VARS = ("AISHELL_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE")
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)
CONTAINER_PATH = "/etc/aishell/ca-bundle.crt"
CONTAINER_ENV = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "GIT_SSL_CAINFO")


def find_bundle(
    configured: str | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The bundle to use: configured, else from the environment, else the system's."""
    env = os.environ if environ is None else environ
    candidates: list[str] = []
    if configured:
        candidates.append(configured)
    candidates += [env[v] for v in ENV_VARS if env.get(v)]
    candidates += list(SYSTEM_BUNDLES)
    for candidate in candidates:
        path = Path(candidate).expanduser()
        inputs.note(path)
        if path.is_file():
            return path.resolve()
    return None


def container_env() -> dict[str, str]:
    """Variables that make every common TLS stack in a container use the bundle."""
    return dict.fromkeys(CONTAINER_ENV, CONTAINER_PATH)
