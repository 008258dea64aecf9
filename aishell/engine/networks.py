"""Networks: the internal networks an egress-proxied sandbox sits on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aishell.engine.client import _check_status
from aishell.engine.volumes import Volumes
from aishell.errors import EngineError


class Networks(Volumes):
    def create_network(self, name: str, *, internal: bool, labels: Mapping[str, str]) -> str:
        """Create a bridge network; ``internal``: the engine gives it no route out (its
        own firewall rules, aishell never touches them). Returns its id.

        Raises:
            EngineConflict: a network named ``name`` exists.
        """
        payload = {"Name": name, "Driver": "bridge", "Internal": internal,
                   "CheckDuplicate": True, "Labels": dict(labels)}
        status, data = self._request("POST", "/networks/create", payload=payload)
        _check_status(status, data, f"creating network {name}")
        return str((data or {}).get("Id", name))

    def connect_network(self, network: str, container: str) -> None:
        """Attach ``container`` (created, not yet started) to ``network`` as well."""
        status, data = self._request("POST", f"/networks/{quote(network, safe='')}/connect",
                                     payload={"Container": container})
        _check_status(status, data, f"connecting {container} to network {network}")

    def remove_network(self, name: str) -> None:
        """Remove ``name``.

        Raises:
            EngineNotFound: there is no such network.
            EngineConflict: a container still uses it (Podman says 500 for that: also
                reported as EngineError).
        """
        status, data = self._request("DELETE", f"/networks/{quote(name, safe='')}",
                                     timeout=30.0)
        _check_status(status, data, f"removing network {name}")

    def list_networks(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        filters = [f"{k}={v}" if v else k for k, v in labels.items()]
        status, data = self._get("/networks?filters=" + quote(json.dumps({"label": filters})))
        if status != 200 or not isinstance(data, list):
            raise EngineError(f"cannot list networks: HTTP {status}")
        return data

    def default_network(self) -> str:
        """The engine's default network with a route out (``bridge``; Podman: ``podman``).

        Asks ``/version`` only (a few ms; ``/info`` takes a hundred)."""
        status, version = self._get("/version", timeout=5.0)
        components = (version or {}).get("Components") or [] if status == 200 else []
        podman = any("podman" in str(c.get("Name", "")).lower() for c in components)
        return "podman" if podman else "bridge"
