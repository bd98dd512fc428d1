#!/usr/bin/env bash
# Installs the Debian packages the lab needs outside the venv, other than the browser (see
# browser-deps.sh): bubblewrap, the sandbox `labsupport grade` runs every student's kernel in.
# `make system-deps` runs this before the tests.
#
# Nothing to do   -> says so and exits 0.
# root            -> apt-get update once, then apt-get install --no-install-recommends.
# password-less sudo -> the same through `sudo -n`.
# neither         -> prints how to install it and exits 0; the grading tests then skip with the
#                    same advice (under CI=true they fail instead).
set -euo pipefail

# shout and apt_install
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

packages=()
if [[ -x /usr/bin/bwrap ]] || command -v bwrap >/dev/null 2>&1; then
    echo "system-deps: found bubblewrap ($(bwrap --version 2>/dev/null || echo bwrap))"
else
    packages+=(bubblewrap)
fi
# Ubuntu 23.10+ (GitHub's ubuntu-latest) forbids unprivileged user namespaces through AppArmor;
# bubblewrap needs one when the tests do not run as root. On a throw-away CI machine we lift it.
allow_userns() {
    local knob=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
    [[ "$(id -u)" -eq 0 ]] && return 0
    bwrap --unshare-all --ro-bind / / true 2>/dev/null && return 0
    if [[ "${CI:-}" == "true" && -r "$knob" && "$(cat "$knob")" == "1" ]] &&
       command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "system-deps: CI=true: allowing unprivileged user namespaces for bubblewrap"
        sudo -n sysctl -q -w kernel.apparmor_restrict_unprivileged_userns=0
        return 0
    fi
    shout "bubblewrap is installed but cannot create a user namespace for this (non-root) user." \
          "Grade as root, or allow them: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0" \
          "Until then the grading tests are SKIPPED (and FAIL when CI=true)."
}

if [[ ${#packages[@]} -eq 0 ]]; then
    echo "system-deps: nothing to install."
    allow_userns
    exit 0
fi

status=0
apt_install system-deps "the grading tests are" "${packages[@]}" || status=$?
if [[ $status -eq 1 && "${CI:-}" == "true" ]]; then
    exit 1
elif [[ $status -ne 0 ]]; then
    exit 0
fi
echo "system-deps: $(bwrap --version) is ready."
allow_userns
