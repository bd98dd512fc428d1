# Shared by browser-deps.sh and system-deps.sh (sourced, not run): a loud banner, and installing
# Debian packages with apt-get as root or through password-less sudo.
#
#   apt_install WHO WHAT_SKIPS PACKAGE...
#     WHO         the calling script's name, for its log lines ("browser-deps")
#     WHAT_SKIPS  what skips until the packages are there ("tests/test_browser.py is")
#   returns 0 when installed; otherwise prints how to install them by hand and returns 2 (this
#   account can install nothing) or 1 (apt-get failed); callers exit 1 on 1 under CI=true.

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

apt_install() {
    local who="$1" skips="$2"
    shift 2
    local as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            shout "$who needs Debian's $*, which this account cannot install" \
                  "(not root, no password-less sudo)." \
                  "" \
                  "Install it once, then run the tests again:" \
                  "    sudo apt-get install $*        (Debian / Ubuntu)" \
                  "" \
                  "Until then $skips SKIPPED (and FAILS when CI=true)."
            return 2
        fi
    fi
    echo "$who: installing $* with apt-get"
    if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null &&
           "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
               apt-get install -y -q --no-install-recommends "$@" </dev/null; }; then
        shout "apt-get could not install: $*" \
              "Install it by hand:  sudo apt-get install $*" \
              "Until then $skips SKIPPED (and FAILS when CI=true)."
        return 1
    fi
}
