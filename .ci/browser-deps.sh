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

shout() {
    local line
    echo
    echo "##########################################################################################"
    for line in "$@"; do
        echo "##  $line"
    done
    echo "##########################################################################################"
    echo
}

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

if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    shout "The in-browser widget test needs Debian's Chromium, which is not installed," \
          "and this account can install nothing (not root, no password-less sudo)." \
          "" \
          "Install it once, then run the tests again:" \
          "    sudo apt-get install ${packages[*]}        (Debian / Ubuntu)" \
          "" \
          "Until then tests/test_browser.py is SKIPPED (and FAILS when CI=true)."
    exit 0
fi

echo "browser-deps: installing ${packages[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null; }; then
    shout "apt-get could not install: ${packages[*]}" \
          "Install it by hand:  sudo apt-get install ${packages[*]}" \
          "Until then tests/test_browser.py is SKIPPED (and FAILS when CI=true)."
    if [[ "${CI:-}" == "true" ]]; then
        exit 1
    fi
    exit 0
fi

if ! chromium_path="$(find_chromium)"; then
    shout "apt-get installed ${packages[*]}, but no Chromium is on PATH or at /usr/bin/chromium."
    [[ "${CI:-}" == "true" ]] && exit 1
    exit 0
fi
echo "browser-deps: $("$chromium_path" --version 2>/dev/null || echo "$chromium_path") is ready."
