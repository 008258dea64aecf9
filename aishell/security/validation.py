"""Dangerous engine arguments, mounts and ports: each becomes a :class:`Risk` naming why.

Pure code. The same checks run over the config's ``[run] docker_args / mounts / ports``
and over one-off ``-v`` / ``-p`` / extra arguments. By default every risk is a warning;
``[security] strict = true`` turns them into one refusal (:func:`enforce`).

Arguments are parsed the way the engine CLI would see them: ``--flag=value``,
``--flag value``, ``-vVALUE``, and a config element holding several words
(``"--cap-add ALL"``) is split like a shell would.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aishell.errors import AishellError
from aishell.paths import working_dir

ENGINE_SOCKETS = ("docker.sock", "podman.sock", "containerd.sock", "dockershim.sock")

DANGEROUS_CAPS = {
    "ALL": "gives the container every Linux capability (root inside can take over the host)",
    "SYS_ADMIN": "allows mount, namespaces and most container escapes",
    "NET_ADMIN": "lets the container reconfigure networking and firewall rules",
    "SYS_MODULE": "lets the container load kernel modules into the host kernel",
    "SYS_PTRACE": "lets the container trace and inject into processes",
    "DAC_READ_SEARCH": "bypasses file permission checks (a known container escape)",
    "SYS_RAWIO": "gives raw access to host I/O ports and memory",
}
HOST_NAMESPACES = {
    "--pid": "shares the host's process table (the container sees and can signal host processes)",
    "--network": "shares the host's network stack (host-local services become reachable)",
    "--net": "shares the host's network stack (host-local services become reachable)",
    "--ipc": "shares the host's IPC namespace (host shared memory becomes reachable)",
    "--userns": "disables user-namespace remapping (root inside is root on the host)",
    "--uts": "shares the host's hostname namespace",
    "--cgroupns": "shares the host's cgroup namespace",
}
UNCONFINED = {
    "seccomp": "turns off the seccomp syscall filter",
    "apparmor": "turns off the AppArmor profile",
    "systempaths": "unmasks /proc and /sys paths that are hidden for safety",
}
# Options whose value is the next word when not written as --flag=value.
VALUE_FLAGS = {
    "-v", "--volume", "--mount", "-p", "--publish", "--cap-add", "--security-opt",
    "--device", "--pid", "--network", "--net", "--ipc", "--userns", "--uts", "--cgroupns",
    "--device-cgroup-rule",
}
SHORT_ATTACHED = ("-v", "-p")

# Host paths that must never be shared: (path relative to home or absolute, why).
HOME_SECRETS = {
    ".ssh": "SSH keys",
    ".aws": "AWS credentials",
    ".gnupg": "GPG private keys",
    ".kube": "Kubernetes credentials",
    ".azure": "Azure credentials",
    ".password-store": "the password store",
    ".config/gcloud": "Google Cloud credentials",
    ".docker": "registry credentials (.docker/config.json)",
}
SYSTEM_PATHS = {
    "/etc": "host system configuration",
    "/root": "root's home directory",
    "/proc": "the host's /proc",
    "/sys": "the host's /sys",
    "/dev": "host devices",
    "/boot": "the host's kernel and boot files",
    "/run": "runtime sockets (the engine socket among them)",
    "/var/run": "runtime sockets (the engine socket among them)",
    "/var/lib/docker": "the engine's storage (every image and container)",
}


@dataclass(frozen=True)
class Risk:
    item: str  # what the user wrote, e.g. "--privileged" or "~/.ssh:/ssh"
    reason: str  # why it weakens the sandbox
    origin: str = ""  # where it came from, e.g. "aishell.toml:12 [run] docker_args"

    def text(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        return f"{where}{self.item} {self.reason}"


def split_args(args: Iterable[str]) -> list[str]:
    """Config elements split like a shell would (``"--cap-add ALL"`` → two words)."""
    words: list[str] = []
    for arg in args:
        try:
            words += shlex.split(arg) if any(c.isspace() for c in arg) else [arg]
        except ValueError:
            words.append(arg)
    return words


def _options(words: Sequence[str]) -> list[tuple[str, str | None, str]]:
    """(flag, value, as written) for every option in ``words``."""
    out: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            continue
        if word.startswith("--") and "=" in word:
            flag, value = word.split("=", 1)
            out.append((flag, value, word))
            continue
        for short in SHORT_ATTACHED:
            if word.startswith(short) and len(word) > len(short) and not word.startswith("--"):
                out.append((short, word[len(short):].lstrip("="), word))
                break
        else:
            if word == "--privileged":
                out.append((word, None, word))
            elif word in VALUE_FLAGS and i < len(words):
                out.append((word, words[i], f"{word} {words[i]}"))
                i += 1
            else:
                out.append((word, None, word))
    return out


def _cap_names(value: str) -> list[str]:
    names = []
    for part in value.split(","):
        name = part.strip().upper().removeprefix("CAP_")
        if name:
            names.append(name)
    return names


NETWORK_OVERRIDE = {
    "allowlist": ("gives the sandbox a network although [network] mode = \"allowlist\" "
                  "allows it only its egress socket: the launch refuses it"),
    "none": "gives the sandbox a network although [network] mode = \"none\"",
}


def check_docker_args(args: Iterable[str], *, home: str | None = None,
                      origin: str = "", network_mode: str = "open") -> list[Risk]:
    """Every dangerous option in ``args`` (engine ``run`` options); with ``network_mode``
    other than open, any ``--network`` too (it would undo the mode)."""
    risks: list[Risk] = []
    for flag, value, written in _options(split_args(args)):
        val = (value or "").strip()
        if flag in ("--network", "--net") and network_mode in NETWORK_OVERRIDE:
            risks.append(Risk(written, NETWORK_OVERRIDE[network_mode], origin))
        if flag in ("-v", "--volume"):
            risks += check_mounts([val], home=home, origin=origin, written=written)
        elif flag == "--mount":
            risks += _check_mount_option(val, written, home=home, origin=origin)
        elif flag in ("-p", "--publish"):
            risks += check_ports([val], origin=origin, written=written)
        else:
            risks += [Risk(written, reason, origin) for reason in _flag_risks(flag, val)]
    return risks


PRIVILEGED = ("gives the container every capability and all host devices (root inside can "
              "take over the host)")
FIXED_RISKS = {
    "--device": "gives the container direct access to a host device",
    "--device-cgroup-rule": "gives the container direct access to host devices",
    "-P": "publishes every exposed port on all host interfaces",
    "--publish-all": "publishes every exposed port on all host interfaces",
}


def _flag_risks(flag: str, value: str) -> list[str]:
    low = value.lower()
    reasons: list[str] = []
    if flag == "--privileged":
        if low in ("", "true", "1"):
            reasons.append(PRIVILEGED)
    elif flag == "--cap-add":
        reasons += [f"adds {cap}: {DANGEROUS_CAPS[cap]}" for cap in _cap_names(value)
                    if cap in DANGEROUS_CAPS]
    elif flag in HOST_NAMESPACES:
        if low == "host":
            reasons.append(HOST_NAMESPACES[flag])
    elif flag == "--security-opt":
        key, _, setting = low.replace(":", "=", 1).partition("=")
        if key in UNCONFINED and setting == "unconfined":
            reasons.append(UNCONFINED[key])
        elif (key, setting) == ("label", "disable"):
            reasons.append("turns off SELinux labelling")
    elif flag in FIXED_RISKS:
        reasons.append(FIXED_RISKS[flag])
    return reasons


def _check_mount_option(value: str, written: str, *, home: str | None,
                        origin: str) -> list[Risk]:
    fields: dict[str, str] = {}
    for part in value.split(","):
        key, _, val = part.partition("=")
        fields[key.strip().lower()] = val.strip()
    if fields.get("type", "volume") != "bind":
        return []
    source = fields.get("source") or fields.get("src") or ""
    read_only = "readonly" in fields or "ro" in fields
    return _check_source(source, read_only, written, home=home, origin=origin)


def expand(path: str, home: str | None = None) -> str:
    """``~`` and ``$VARS`` expanded, then normalised (no symlink resolution)."""
    if home is not None and (path == "~" or path.startswith("~/")):
        path = home + path[1:]
    path = str(Path(os.path.expandvars(path)).expanduser()) if path else path
    return posixpath.normpath(posixpath.join(str(working_dir()), path)) if path else path


def split_mount(spec: str) -> tuple[str, str, str]:
    """(source, target, options) of a ``-v`` style ``SRC[:DST][:OPTS]``."""
    parts = spec.split(":")
    if len(parts) == 1:
        return parts[0], parts[0], ""
    if len(parts) == 2:
        return parts[0], parts[1], ""
    return parts[0], parts[1], ":".join(parts[2:])


def check_mounts(mounts: Iterable[str], *, home: str | None = None, origin: str = "",
                 written: str | None = None) -> list[Risk]:
    """Every mount whose host source exposes something the sandbox should hide."""
    risks: list[Risk] = []
    for spec in mounts:
        source, _target, opts = split_mount(spec)
        read_only = "ro" in opts.split(",")
        risks += _check_source(source, read_only, written or spec, home=home, origin=origin)
    return risks


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_source(source: str, read_only: bool, written: str, *, home: str | None,
                  origin: str) -> list[Risk]:
    if not source or not (source.startswith(("/", "~", "$", "."))):
        return []  # a named volume, not a host path
    home_dir = posixpath.normpath(home or str(Path.home()))
    paths = [expand(source, home_dir)]
    if Path(paths[0]).exists():  # a symlink to ~/.ssh is ~/.ssh
        real = os.path.realpath(paths[0])
        if real != paths[0]:
            paths.append(real)
    for path in paths:
        reason = _path_risk(path, home_dir, read_only)
        if reason:
            return [Risk(written, reason, origin)]
    return []


def _path_risk(path: str, home: str, read_only: bool) -> str | None:
    if path == "/":
        return "mounts the host's whole filesystem"
    if posixpath.basename(path) in ENGINE_SOCKETS:
        return "mounts the engine socket (full control of the host through the engine)"
    if path == home:
        return "mounts your whole home directory (every credential in it)"
    if _within(home, path):
        return f"contains your whole home directory ({home})"
    return _home_secret_risk(path, home) or _system_risk(path, home, read_only)


def _home_secret_risk(path: str, home: str) -> str | None:
    for rel, what in HOME_SECRETS.items():
        secret = posixpath.join(home, rel)
        if _within(path, secret):
            return f"exposes {what} ({secret})"
        if _within(secret, path):
            return f"contains {what} ({secret})"
    return None


def _system_risk(path: str, home: str, read_only: bool) -> str | None:
    for root, what in SYSTEM_PATHS.items():
        if _within(home, root):  # root's home is /root: its projects are not "system"
            continue
        if path == root:
            return f"mounts {what}"
        if _within(path, root) and not read_only:
            return f"mounts part of {what} read-write"
    return None


def check_ports(ports: Iterable[str], *, origin: str = "",
                written: str | None = None) -> list[Risk]:
    """Ports published on every host interface (reachable from the network)."""
    risks: list[Risk] = []
    for spec in ports:
        body = spec.split("/", 1)[0]
        if body.startswith("["):  # [IPv6]:host:container
            host_ip = body[1:body.index("]")] if "]" in body else ""
        else:
            parts = body.split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
        if host_ip in ("", "0.0.0.0", "::"):  # noqa: S104 - detecting it, not binding
            shown = written or spec
            risks.append(Risk(shown, "publishes the port on all host interfaces (reachable "
                              "from the network); bind it to 127.0.0.1 to keep it local",
                              origin))
    return risks


def enforce(risks: Sequence[Risk], *, strict: bool) -> list[str]:
    """Warnings for ``risks``; with ``strict``, a refusal naming every one."""
    if not risks:
        return []
    if strict:
        lines = "\n  ".join(r.text() for r in risks)
        raise AishellError(
            f"refused by [security] strict = true:\n  {lines}",
            hint="remove these from the config or command line, or set "
                 "[security] strict = false to allow them with a warning",
        )
    return [r.text() for r in risks]
