#!/usr/bin/env bash
# Idempotent set-up on a Debian machine: the servers prodstate runs with (and the
# tools its tests use) from apt, then prodstate with its test extra in ./.venv.
# Does nothing slow when everything is already in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'bootstrap: %s\n' "$*" >&2; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -e "${PRODSTATE_ZOOKEEPER_JARS:-/usr/share/java}/zookeeper.jar" ] || missing+=(zookeeper)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v ip >/dev/null || missing+=(iproute2)
command -v tc >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
command -v setpriv >/dev/null || missing+=(util-linux)
[ -x /usr/sbin/nagios4 ] || missing+=(nagios4-core)   # runs prodstate check in a test
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v promtool >/dev/null || missing+=(prometheus)  # checks and unit-tests the alert rules
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v systemd-analyze >/dev/null || missing+=(systemd)

if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
    say "installing Debian packages: ${pkgs[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# The Python side, at the versions CI tests: rebuilt only when the packaging files change.
stamp=".venv/.prodstate-installed"
want="$(cat pyproject.toml constraints/ci.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing prodstate and its test extra into .venv"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints/ci.txt -e '.[test]'
    echo "$want" > "$stamp"
fi
