#!/bin/bash
# aishell sandbox entrypoint. Runs as root, prepares the user that mirrors the host
# user, then exec's the command as that user through gosu: no wrapper process remains.
#
# Inputs (environment, set by aishell):
#   AISHELL_UID, AISHELL_GID   host user's ids
#   AISHELL_USER               host user name (a fallback name is used when taken)
#   AISHELL_HOME               host home path; a fresh, empty directory inside
#   AISHELL_PROJECT            project path (git safe.directory)
#   AISHELL_GIT_NAME, AISHELL_GIT_EMAIL   host git identity (optional)
#   AISHELL_PRE_START          command run in the background as the user (optional)
#   AISHELL_DETACH=1           run the command inside tmux session `main` (aishell --detach)
#   AISHELL_SUDO               1: passwordless sudo for the user ([run] sudo = true; the
#                              launcher then leaves out no-new-privileges, which blocks sudo)
#   AISHELL_EGRESS_FORWARDS    "PORT=SOCKET …": forward 127.0.0.1:PORT to each socket of the
#                              egress service mounted at /run/aishell-egress (the proxy of
#                              allowlist mode, the credential brokers)
set -euo pipefail

uid=${AISHELL_UID:-0}
gid=${AISHELL_GID:-0}
want_user=${AISHELL_USER:-aishell}
home=${AISHELL_HOME:-/home/$want_user}
state=/run/aishell
mkdir -p "$state"

if [ "$uid" = 0 ]; then
  user=root
  home=${AISHELL_HOME:-/root}
  mkdir -p "$home"  # the host's home path, like every other user (config mounts live there)
else
  # Group: reuse whatever group already has this GID, else create one.
  if ! getent group "$gid" >/dev/null; then
    group=$want_user
    getent group "$group" >/dev/null && group="aishell-$gid"
    groupadd --gid "$gid" "$group"
  fi
  # User: reuse the image's user with this UID (pointing it at our home), else create one.
  if existing=$(getent passwd "$uid"); then
    user=${existing%%:*}
    usermod --home "$home" --gid "$gid" "$user" >/dev/null 2>&1 || true
  else
    user=$want_user
    if getent passwd "$user" >/dev/null; then user="aishell-$uid"; fi
    useradd --uid "$uid" --gid "$gid" --home-dir "$home" --no-create-home \
      --shell /bin/bash "$user"
  fi
  # A fresh HOME inside the container; the host's home is never mounted. The engine
  # creates HOME and the parents of mount points below it as root: hand those to the
  # user so harnesses can create siblings (~/.config/x next to a mounted ~/.config/y).
  # -xdev keeps find out of the mounts themselves (the project, config dirs).
  mkdir -p "$home"
  while IFS= read -r -d '' dir; do
    mountpoint -q "$dir" || chown "$uid:$gid" "$dir"
  done < <(find "$home" -xdev -maxdepth 3 -type d -user 0 -print0 2>/dev/null)
fi

# Passwordless sudo only when asked for; the foundation has sudo only in that case too.
if [ "${AISHELL_SUDO:-}" = 1 ] && [ "$uid" != 0 ] && command -v sudo >/dev/null; then
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" > /etc/sudoers.d/aishell
  chmod 0440 /etc/sudoers.d/aishell
fi
unset AISHELL_SUDO

# git: trust the project and take the host identity (system-wide, HOME is fresh).
if [ -n "${AISHELL_PROJECT:-}" ]; then
  git config --system --add safe.directory "$AISHELL_PROJECT"
fi
[ -n "${AISHELL_GIT_NAME:-}" ] && git config --system user.name "$AISHELL_GIT_NAME"
[ -n "${AISHELL_GIT_EMAIL:-}" ] && git config --system user.email "$AISHELL_GIT_EMAIL"

# The locked env: its bins come first on PATH, for login shells too.
path_prefix=""
for dir in /tools/bin /tools/node/bin; do
  [ -d "$dir" ] && path_prefix="$path_prefix$dir:"
done
export PATH="$path_prefix$PATH"
printf 'export PATH=%q\n' "$PATH" > /etc/profile.d/00-aishell-path.sh

# Window title and a prompt that says where you are.
project_name=$(basename "${AISHELL_PROJECT:-sandbox}")
cat > /etc/profile.d/01-aishell-prompt.sh <<PROFILE
PS1='[aishell] \u@${project_name}:\w\\$ '
PROFILE

export HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/bash

run_as() {
  if [ "$uid" = 0 ]; then "$@"; else gosu "$user" "$@"; fi
}

# Egress: the proxy of allowlist mode (the sandbox's one way out) and the credential
# brokers are Unix sockets of the egress service; socat (as the user) carries each
# connection from the loopback port the harness is pointed at to its socket. The command
# starts once every port listens (/proc/net/tcp: local address 0100007F:PORT, state 0A).
for forward in ${AISHELL_EGRESS_FORWARDS:-}; do
  port=${forward%%=*}
  run_as socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
    "UNIX-CONNECT:/run/aishell-egress/${forward#*=}" </dev/null >/dev/null 2>&1 &
  listen=$(printf '0100007F:%04X' "$port")
  for ((try = 0; try < 5000; try++)); do  # builtins only: socat binds within ~10 ms
    tcp=$(</proc/net/tcp)
    [[ $tcp == *"$listen 00000000:0000 0A"* ]] && break
  done
done
unset AISHELL_EGRESS_FORWARDS

# pre_start: background, as the user; its state is read by `aishell ps`.
if [ -n "${AISHELL_PRE_START:-}" ]; then
  echo pending > "$state/pre-start"
  (
    if run_as bash -c "$AISHELL_PRE_START" >/tmp/pre-start.log 2>&1; then
      echo ready > "$state/pre-start"
    else
      echo failed > "$state/pre-start"
    fi
  ) &
fi
unset AISHELL_PRE_START

# TERM: the host's terminal may have no terminfo entry in this image (kitty, ghostty,
# wezterm…); programs then misdraw or refuse to start. Fall back to a universal one.
if [ -n "${TERM:-}" ] && ! infocmp "$TERM" >/dev/null 2>&1; then
  export TERM=xterm-256color
fi

cd "${AISHELL_PROJECT:-$home}" 2>/dev/null || cd "$home"

# A harness that is not installed: say why, instead of gosu's "executable file not found".
if [ $# -gt 0 ] && ! command -v "$1" >/dev/null 2>&1; then
  if [ -d /tools/bin ]; then
    echo "aishell: $1: command not found in the sandbox" >&2
  else
    echo "aishell: $1: command not found (no env is mounted at /tools: run \`aishell sync\`)" >&2
  fi
  exit 127
fi

if [ "${AISHELL_DETACH:-}" = 1 ]; then
  unset AISHELL_DETACH
  # The command runs in tmux session `main` (`aishell attach` joins it). This process
  # then waits on a tmux channel the session signals when the command ends, so the
  # container lives exactly as long as the command; tmux remembers a signal sent before
  # anyone waits, and a killed session ends the wait too (its server exits).
  run_as tmux -u new-session -d -s main -x 200 -y 50 -c "$PWD" -- \
    bash -c '"$@"; status=$?; tmux wait-for -S aishell-main; exit $status' aishell "$@"
  touch "$state/ready"  # `aishell --detach` and `attach` wait for this: the session exists
  if [ "$uid" = 0 ]; then
    exec tmux wait-for aishell-main
  fi
  exec gosu "$user" tmux wait-for aishell-main
fi
unset AISHELL_DETACH

if [ "$uid" = 0 ]; then
  exec "$@"
fi
exec gosu "$user" "$@"
