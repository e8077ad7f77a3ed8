#!/usr/bin/env bash
# Runs orca's whole test suite. Installs what the tests need when it is
# missing (CI calls this through .ci/run on a clean machine).
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages when a command is missing (root or sudo).
need() {
    local cmd="$1"; shift
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then
        echo "scripts/test.sh: installing $* (for $cmd)" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
    fi
}

need sh dash
need setsid util-linux
need curl curl
# tests/ssh.rs runs a real OpenSSH server on loopback.
need /usr/sbin/sshd openssh-server
need ssh-keygen openssh-client
# tests/clock.rs steps the wall clock orca reads with libfaketime.
need faketime faketime
# tests/console.rs drives the web console in headless Chromium (WebDriver).
need chromium chromium
need chromedriver chromium-driver

cargo test --workspace "$@"
