#!/usr/bin/env bash
# Installs what tests/test_browser.py needs outside the venv: Debian's chromium, and a font so the
# pages it renders show text (playwright itself comes from pip, `.[dev]`; it never downloads a
# browser here). `make browser-deps` runs this before the tests.
#
# Nothing to do   -> says so and exits 0.
# root            -> apt-get update once, then apt-get install --no-install-recommends.
# password-less sudo -> the same through `sudo -n`.
# neither         -> prints how to install it and exits 0; the browser test then skips with the
#                    same advice (under CI=true it fails instead).
set -euo pipefail

find_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        echo /usr/bin/chromium
        return 0
    fi
    local name found
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        # bash's `command -v` also reports a non-executable file when it finds nothing better.
        found="$(command -v "$name" 2>/dev/null)" || continue
        if [[ -x "$found" ]]; then
            echo "$found"
            return 0
        fi
    done
    return 1
}

have_fonts() {
    command -v fc-list >/dev/null 2>&1 && [[ -n "$(fc-list 2>/dev/null | head -n 1)" ]]
}

# shout and apt_install
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

packages=()
if chromium_path="$(find_chromium)"; then
    echo "browser-deps: found Chromium at $chromium_path"
else
    packages+=(chromium)
fi
if ! have_fonts; then
    # Without any font, Chromium draws every letter as an empty box.
    packages+=(fontconfig fonts-dejavu-core)
fi
if [[ ${#packages[@]} -eq 0 ]]; then
    echo "browser-deps: nothing to install."
    exit 0
fi

status=0
apt_install browser-deps "tests/test_browser.py is" "${packages[@]}" || status=$?
if [[ $status -eq 1 && "${CI:-}" == "true" ]]; then
    exit 1
elif [[ $status -ne 0 ]]; then
    exit 0
fi

if ! chromium_path="$(find_chromium)"; then
    shout "apt-get installed ${packages[*]}, but no Chromium is on PATH or at /usr/bin/chromium."
    [[ "${CI:-}" == "true" ]] && exit 1
    exit 0
fi
echo "browser-deps: $("$chromium_path" --version 2>/dev/null || echo "$chromium_path") is ready."
