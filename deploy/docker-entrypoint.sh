#!/bin/sh
# The image's entrypoint. It starts as root only to hand certificate files the proxy's user may
# not read to that user; the proxy itself always runs unprivileged.
#
# certbot leaves /etc/letsencrypt/live/<domain>/privkey.pem (a symlink into ../../archive/) root's
# alone, 0600, in root-only folders. When TLS_CERT_FILE or TLS_KEY_FILE is not readable by the
# proxy's user, both are copied (symlinks followed) into a tmpfs folder, the proxy is pointed at
# the copies, and a root loop copies them again when the originals change (a renewal); the
# proxy's own watcher then reloads them. Readable files (./certs), TLS_SELF_SIGNED or plain HTTP:
# nothing is copied. Either way the proxy replaces this shell (exec), so docker stop's SIGTERM
# reaches it and its exit code is the container's.
#
# Image defaults, changed by the tests only:
#   IMMICH_PROXY_USER        the proxy's user (node)
#   IMMICH_PROXY_TLS_COPIES  the copies' folder (/run/immich-proxy/tls; a tmpfs in docker-compose.yml)
#   IMMICH_PROXY_TLS_POLL    seconds between two looks at the originals (30; certbot renews days ahead)
set -eu

user=${IMMICH_PROXY_USER:-node}
copies=${IMMICH_PROXY_TLS_COPIES:-/run/immich-proxy/tls}
poll=${IMMICH_PROXY_TLS_POLL:-30}
# not settings of the proxy, which would warn about unknown variables
unset IMMICH_PROXY_USER IMMICH_PROXY_TLS_COPIES IMMICH_PROXY_TLS_POLL

# started with --user (or as the user already): there is no privilege to drop or to use
if [ "$(id -u)" != 0 ]; then exec "$@"; fi

group=$(id -g "$user")
as_user () { setpriv --reuid="$user" --regid="$group" --init-groups -- "$@"; }

say () { echo "immich-proxy entrypoint: $*" >&2; }

# Both files to temporary names first, then renamed over the copies: the proxy never reads a
# half-written file, and a failed read keeps the previous pair. A subshell, for its umask.
copy_pair () (
  umask 077
  if cat -- "$1" > "$copies/.fullchain.pem.new" && cat -- "$2" > "$copies/.privkey.pem.new" &&
    chown "$user:$group" "$copies/.fullchain.pem.new" "$copies/.privkey.pem.new" &&
    mv -f "$copies/.fullchain.pem.new" "$copies/fullchain.pem" &&
    mv -f "$copies/.privkey.pem.new" "$copies/privkey.pem"; then
    exit 0
  fi
  rm -f "$copies/.fullchain.pem.new" "$copies/.privkey.pem.new"
  exit 1
)

cert=${TLS_CERT_FILE:-}
key=${TLS_KEY_FILE:-}
# copy only what root can read and the user cannot; anything else is the proxy's to report
if [ -n "$cert" ] && [ -n "$key" ] && [ -r "$cert" ] && [ -r "$key" ] &&
  ! as_user sh -c 'test -r "$1" && test -r "$2"' check "$cert" "$key"; then
  # root's folder, readable by the user's group: the user cannot swap its entries (say for a
  # symlink that root would then write through)
  mkdir -p "$copies"
  chown "root:$group" "$copies"
  chmod 0750 "$copies"
  copy_pair "$cert" "$key"
  say "$key is not readable by $user: serving copies in $copies, checked against it every ${poll}s"
  export TLS_CERT_FILE="$copies/fullchain.pem" TLS_KEY_FILE="$copies/privkey.pem"
  proxy=$$
  # A child of the proxy (it keeps this PID after exec): in a container it ends with it; outside
  # one it stops once that PID is gone.
  (
    while sleep "$poll" && kill -0 "$proxy" 2> /dev/null; do
      if ! cmp -s -- "$cert" "$copies/fullchain.pem" || ! cmp -s -- "$key" "$copies/privkey.pem"; then
        if copy_pair "$cert" "$key"; then say "$cert or $key changed: copied again"; else say "could not read $cert or $key: kept the previous copies"; fi
      fi
    done
  ) < /dev/null &
fi

exec setpriv --reuid="$user" --regid="$group" --init-groups -- "$@"
