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
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && getent group docker >/dev/null \
   && ! id -nG "$SUDO_USER" | tr ' ' '\n' | grep -qx docker; then
  log "$SUDO_USER is not in the docker group: \`sudo usermod -aG docker $SUDO_USER\`, then log in again"
fi
