#!/usr/bin/env bash
# Provision what aishell and its test suite need on a Debian/Ubuntu machine:
# uv, a running Docker engine and a local `debian:trixie-slim` base image.
#
# Idempotent: every step checks first and is skipped when already satisfied.
# It never pulls from a container registry: when the engine lacks the base
# image, it is built with debootstrap from the Debian mirror that the
# machine's apt sources already use, then `docker import`ed.
#
# Usage: bash scripts/provision.sh   as root, or as a user who may sudo: the first step
#        that needs root re-runs the whole (idempotent) script under sudo.
# Env:   AISHELL_BASE_IMAGE  (default debian:trixie-slim)
#        AISHELL_BASE_SUITE  (default trixie)
#        AISHELL_DEBIAN_MIRROR (default: first Debian URI in the apt sources)
set -euo pipefail

# dockerd and debootstrap live in sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
base_image=${AISHELL_BASE_IMAGE:-debian:trixie-slim}
suite=${AISHELL_BASE_SUITE:-trixie}
log() { printf 'provision: %s\n' "$*" >&2; }

script=$(readlink -f "$0")
script_args=("$@")
need_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  if command -v sudo >/dev/null 2>&1; then
    log "this step needs root: $1; re-running under sudo"
    exec sudo --preserve-env=AISHELL_BASE_IMAGE,AISHELL_BASE_SUITE,AISHELL_DEBIAN_MIRROR,PATH \
      bash "$script" "${script_args[@]}"
  fi
  log "this step needs root: $1 (run this script as root; there is no sudo here)"
  exit 1
}

apt_install() {
  need_root "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${_apt_updated:-}" ]; then
    apt-get update -qq
    _apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. uv -------------------------------------------------------------------
if ! command -v uv >/dev/null 2>&1; then
  log "installing uv from PyPI"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --break-system-packages uv
  hash -r
  if ! command -v uv >/dev/null 2>&1 && [ -x "$HOME/.local/bin/uv" ]; then
    export PATH="$HOME/.local/bin:$PATH"  # pip installed it for this user only
    log "uv is in ~/.local/bin: add it to your PATH (export PATH=\"\$HOME/.local/bin:\$PATH\")"
  fi
fi
command -v uv >/dev/null || { log "uv is not on PATH after installing it"; exit 1; }

# 2. the Docker engine ------------------------------------------------------
engine_up() { docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 && ! engine_up; then
  log "installing Docker's engine (Debian package docker.io)"
  apt_install docker.io
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt_install debootstrap
fi
# `aishell lock` mints throwaway certificates with openssl to record HTTPS downloads of
# install scripts (aishell/store/tlsmint.py); the tests do the same.
if ! command -v openssl >/dev/null 2>&1; then
  log "installing openssl"
  apt_install openssl
fi

# The shells whose completion scripts the test suite loads (bash is always there).
for shell in zsh fish; do
  if ! command -v "$shell" >/dev/null 2>&1; then
    log "installing $shell (the completion tests run it)"
    apt_install "$shell"
  fi
done

if ! engine_up; then
  need_root "starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then
    :
  else
    log "starting dockerd in the background (log: /var/log/aishell-dockerd.log)"
    # From /: a daemon must not keep (or lose) the working directory it was started in.
    (cd / && exec nohup dockerd >/var/log/aishell-dockerd.log 2>&1) &
  fi
  for _ in $(seq 1 120); do
    engine_up && break
    sleep 0.5
  done
  if ! engine_up; then
    log "the engine did not come up within 60 s; last lines of its log:"
    tail -n 20 /var/log/aishell-dockerd.log >&2 || true
    exit 1
  fi
fi
log "engine: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"

# 3. the base image ---------------------------------------------------------
mirror=${AISHELL_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$( { grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
              /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
            | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n 1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  need_root "debootstrap"
  log "creating $base_image locally: debootstrap --variant=minbase $suite from $mirror"
  root=$(mktemp -d /tmp/aishell-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >/tmp/aishell-debootstrap.log 2>&1 || {
    log "debootstrap failed; last lines of /tmp/aishell-debootstrap.log:"
    tail -n 20 /tmp/aishell-debootstrap.log >&2
    exit 1
  }
  # Keep the image small and free of build-host residue, like the official slim image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
  tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$base_image" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi
log "base image: $base_image ($(docker image inspect --format '{{.Id}}' "$base_image" | cut -c1-19))"
# 3b. an OCI registry for the substituter tests ------------------------------
# Tests start their own `docker-registry serve CONFIG` on a free loopback port (the engine
# treats 127.0.0.0/8 registries as insecure by default). The package's own service must
# not matter: on machines without systemd its start is refused through policy-rc.d
# (exit 101 = "action forbidden"), and where it did start it is left alone.
if ! command -v docker-registry >/dev/null 2>&1; then
  log "installing docker-registry (Debian package, registry 2.8)"
  need_root "apt-get install docker-registry"
  added_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  apt_install docker-registry
  if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
log "registry: $(docker-registry --version 2>/dev/null | head -n 1)"
# dockerd decompresses pulled layers with unpigz when it is on PATH: a pulled
# four-harness env took 21.5 s instead of 31 s here (docs/store.md).
command -v unpigz >/dev/null 2>&1 || apt_install pigz

# 4. Podman, the second engine ------------------------------------------------
# Debian's podman (4.3 on bookworm), rootful, serving its Docker-compatible API on its own
# socket next to dockerd (no systemd needed). AISHELL_PODMAN=0 skips it.
podman_sock=${AISHELL_PODMAN_SOCKET:-/run/podman/podman.sock}
podman_up() { podman --remote --url "unix://$podman_sock" version >/dev/null 2>&1; }
if [ "${AISHELL_PODMAN:-1}" = 1 ]; then
  if ! command -v podman >/dev/null 2>&1 || [ ! -x /usr/libexec/podman/catatonit ]; then
    log "installing podman (and catatonit, its --init)"
    apt_install podman catatonit uidmap
  fi
  # Rootful podman raises every container's nofile/nproc limits beyond the host's; where
  # root may not raise limits (no CAP_SYS_RESOURCE, as in some CI sandboxes) no container
  # starts. There, cap them at what a podman process itself runs with.
  ulimits_conf=/etc/containers/containers.conf.d/aishell-ulimits.conf
  cap_eff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
  if [ ! -e "$ulimits_conf" ] && (( ((0x$cap_eff >> 24) & 1) == 0 )); then  # bit 24: CAP_SYS_RESOURCE
    need_root "configuring podman's default ulimits"
    probe=/tmp/aishell-podman-probe.sock
    podman system service --time=2 "unix://$probe" & probe_pid=$!
    sleep 0.5
    nofile=$(awk '/Max open files/ {print $5}' "/proc/$probe_pid/limits")
    nproc=$(awk '/Max processes/ {print $4}' "/proc/$probe_pid/limits")
    wait "$probe_pid" || true
    rm -f "$probe"
    mkdir -p "$(dirname "$ulimits_conf")"
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
      "$nofile" "$nofile" "$nproc" "$nproc" >"$ulimits_conf"
    log "root may not raise limits here: podman containers get nofile=$nofile nproc=$nproc ($ulimits_conf)"
  fi
  if ! podman_up; then
    need_root "starting podman's API service"
    mkdir -p "$(dirname "$podman_sock")"
    log "starting podman system service on $podman_sock (log: /var/log/aishell-podman.log)"
    (cd / && exec nohup podman system service --time=0 "unix://$podman_sock" >/var/log/aishell-podman.log 2>&1) &
    for _ in $(seq 1 60); do
      podman_up && break
      sleep 0.5
    done
    podman_up || { log "podman's API did not come up; see /var/log/aishell-podman.log"; exit 1; }
  fi
  # Like docker.sock: the docker group may use it (the tests' non-root user does).
  if getent group docker >/dev/null; then
    chgrp docker "$podman_sock" && chmod 660 "$podman_sock" && chmod 755 "$(dirname "$podman_sock")"
  fi
  # Podman has its own image storage: the base image is copied over from dockerd.
  if ! podman image exists "$base_image"; then
    need_root "loading $base_image into podman"
    docker save "$base_image" | podman load >/dev/null
  fi
  log "podman: server $(podman version --format '{{.Server.Version}}') on $podman_sock"
fi

if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && getent group docker >/dev/null \
   && ! id -nG "$SUDO_USER" | tr ' ' '\n' | grep -qx docker; then
  log "$SUDO_USER is not in the docker group: \`sudo usermod -aG docker $SUDO_USER\`, then log in again"
fi
