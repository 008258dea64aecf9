#!/usr/bin/env bash
# Provision what aishell and its test suite need on a Debian/Ubuntu machine:
# uv, a running Docker engine, a local `debian:trixie-slim` base image and Debian's
# `docker-registry` (the OCI registry the substituter tests start on a loopback port).
#
# Idempotent: every step checks first and is skipped when already satisfied.
# It never pulls from a container registry: when the engine lacks the base
# image, it is built with debootstrap from the Debian mirror that the
# machine's apt sources already use, then `docker import`ed.
#
# Usage: sudo scripts/provision.sh            (or as root)
# Env:   AISHELL_BASE_IMAGE  (default debian:trixie-slim)
#        AISHELL_BASE_SUITE  (default trixie)
#        AISHELL_DEBIAN_MIRROR (default: first Debian URI in the apt sources)
set -euo pipefail

base_image=${AISHELL_BASE_IMAGE:-debian:trixie-slim}
suite=${AISHELL_BASE_SUITE:-trixie}
log() { printf 'provision: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "this step needs root: $1 (re-run with sudo)"
    exit 1
  fi
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
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --break-system-packages uv
  hash -r
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

if ! engine_up; then
  need_root "starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then
    :
  else
    log "starting dockerd in the background (log: /var/log/aishell-dockerd.log)"
    nohup dockerd >/var/log/aishell-dockerd.log 2>&1 &
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

# 4. an OCI registry for the substituter tests ---------------------------------
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
