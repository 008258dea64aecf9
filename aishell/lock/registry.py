"""A small npm registry client: packuments and integrity-checked tarball downloads.

urllib honours ``HTTP(S)_PROXY``/``NO_PROXY`` by itself; the CA bundle from
:mod:`aishell.certs` is added to the default trust store, so a TLS-intercepting proxy works.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aishell.errors import AishellError

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


class RegistryError(AishellError):
    """The registry could not answer what was asked."""


class PackageNotFound(RegistryError):
    pass


class RegistryUnreachable(RegistryError):
    pass


def registry_url(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """[settings] registry, else npm_config_registry, else npm's own; always ending in /."""
    env = os.environ if environ is None else environ
    url = configured or env.get("npm_config_registry") or env.get("NPM_CONFIG_REGISTRY") \
        or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@dataclass
class Registry:
    url: str = DEFAULT_REGISTRY
    ca_bundle: Path | None = None
    timeout: float = 60.0
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0  # counted so tests can prove a fresh re-lock does no network I/O

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_bundle is not None:
            ctx.load_verify_locations(cafile=str(self.ca_bundle))
        return ctx

    def _open(self, url: str, accept: str) -> Any:
        self.requests += 1
        req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "aishell"})  # noqa: S310 - http(s) registry URLs only
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler()]
        if url.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=self._context()))
        opener = urllib.request.build_opener(*handlers)
        try:
            return opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnreachable(
                f"cannot reach the npm registry {self.url}: {reason}",
                hint="check the network, HTTPS_PROXY and [settings] registry "
                "(or npm_config_registry); behind a TLS proxy set SSL_CERT_FILE to its CA bundle",
            ) from exc

    def packument(self, name: str) -> dict[str, Any]:
        """The package document (abbreviated form), cached for this run."""
        if name in self._cache:
            return self._cache[name]
        url = self.url + quote(name, safe="@")
        try:
            with self._open(url, CORGI) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise PackageNotFound(
                    f"package {name} does not exist on {self.url}",
                    hint="check the name (npm names are lowercase, scoped ones look like @scope/name)",
                ) from exc
            raise RegistryError(f"the registry {self.url} answered HTTP {exc.code} for {name}") from exc
        except ValueError as exc:
            raise RegistryError(f"the registry {self.url} sent invalid JSON for {name}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
            raise RegistryError(f"the registry {self.url} sent no versions for {name}")
        self._cache[name] = data
        return data
