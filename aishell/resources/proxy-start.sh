#!/bin/sh
# The egress sidecar's entrypoint: tinyproxy's config and host filter arrive in the
# environment (written by aishell.run.egress), go to /tmp, and tinyproxy runs in the
# foreground as the only process. Its log (/tmp/aishell-proxy.log) is what `aishell ps`
# reads the denied hosts from.
set -eu
umask 022
printf '%s\n' "$AISHELL_PROXY_CONF" > /tmp/tinyproxy.conf
printf '%s\n' "$AISHELL_PROXY_FILTER" > /tmp/aishell-proxy.filter
: > /tmp/aishell-proxy.log
exec tinyproxy -d -c /tmp/tinyproxy.conf
