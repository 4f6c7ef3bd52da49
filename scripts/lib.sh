# Shared by scripts/test and scripts/demo (sourced, not run): install what is missing.
# Debian bookworm, as root (or with sudo). Everything here is idempotent and fast when
# everything is already installed.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYENV="${FRONTDESK_PYENV:-$REPO/target/pyenv}"
REQUIREMENTS="$REPO/tests/integration/requirements.txt"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "error: '$*' needs root (and there is no sudo)" >&2; return 1
    fi
}

APT_UPDATED=""
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

# ejabberd 23.01 from Debian. Installing it starts nothing on a machine without systemd; the
# tests and the demo run their own private instances (tests/integration/xmpp_env.py).
ensure_ejabberd() {
    if command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; then
        return 0
    fi
    local t0=$SECONDS
    apt_install ejabberd
    log "ejabberd installed in $((SECONDS - t0)) s"
}

# ejabberd's SQLite driver (scripts/bench's archived-MUC peer: mod_mam on SQLite). ejabberd
# itself does not depend on it; without it an `sql_type: sqlite` host fails to start.
ensure_ejabberd_sqlite() {
    ensure_ejabberd
    if dpkg-query -W -f='${Status}' erlang-p1-sqlite3 2>/dev/null | grep -q "install ok installed"; then
        return 0
    fi
    apt_install erlang-p1-sqlite3
}

# Prosody 0.12 and prosody-modules (mod_privilege, XEP-0356 roster rung) from Debian.
ensure_prosody() {
    if command -v prosody >/dev/null 2>&1 && [ -d /usr/lib/prosody/modules/mod_privilege ]; then
        return 0
    fi
    local t0=$SECONDS
    apt_install prosody prosody-modules
    # The package may start a system instance; the tests run their own on private ports.
    if command -v prosodyctl >/dev/null 2>&1; then
        prosodyctl stop >/dev/null 2>&1 || true
    fi
    log "prosody installed in $((SECONDS - t0)) s"
}

# Debian's Chromium for the widget's browser tests (driven by Playwright from PyPI; no
# browser download: the tests launch /usr/bin/chromium).
ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return 0
    fi
    local t0=$SECONDS
    apt_install chromium
    log "chromium installed in $((SECONDS - t0)) s"
}

# Console XMPP clients for the staff-client tests (tests/integration/test_staff_clients.py):
# Profanity and poezio, driven in tmux. The tests fail (they do not skip) without them.
ensure_tui_clients() {
    if command -v tmux >/dev/null 2>&1 && command -v profanity >/dev/null 2>&1 \
        && command -v poezio >/dev/null 2>&1; then
        return 0
    fi
    local t0=$SECONDS
    apt_install tmux profanity poezio
    log "tmux, profanity, poezio installed in $((SECONDS - t0)) s"
}

# Prometheus and promtool from Debian, for the metrics tests (tests/integration/test_ops.py):
# the tests start their own instance on a private port. Installing starts nothing here
# (no systemd), and a system instance, if one runs, is not touched.
ensure_prometheus() {
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
        return 0
    fi
    local t0=$SECONDS
    apt_install prometheus
    log "prometheus installed in $((SECONDS - t0)) s"
}

# Debian's php-cli and Node.js, which run the token examples in examples/php and examples/node
# (tests/integration/test_token_examples.py).
ensure_php() {
    ensure_cmds php:php-cli node:nodejs
}

# The widget's npm packages (Strophe.js, and axe-core for the browser tests; pinned with a lock file) in examples/web/node_modules.
ensure_web() {
    local web="$REPO/examples/web" stamp="$REPO/examples/web/node_modules/.lock.sha256" want
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    want="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$web/node_modules/strophe.js/dist/strophe.umd.min.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    local t0=$SECONDS
    (cd "$web" && npm ci --no-audit --no-fund >&2)
    echo "$want" > "$stamp"
    log "examples/web npm ci in $((SECONDS - t0)) s"
}

# Real staff clients for tests/integration/test_gajim.py and test_psi.py, run headless on Xvfb
# with a private dbus-daemon and photographed with ImageMagick's `import`; gdbus
# (libglib2.0-bin) drives them over D-Bus. Neither runs as root (Gajim refuses to), so the
# tests run them as an unprivileged system user without a home (each test gives it its own).
GUI_USER="${FRONTDESK_GUI_USER:-frontdesk-gui}"
ensure_cmds() {   # ensure_cmds COMMAND:PACKAGE...: apt-get install the packages of missing commands
    local pkgs=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair#*:}")
    done
    if [ "${#pkgs[@]}" -gt 0 ]; then
        local t0=$SECONDS
        apt_install "${pkgs[@]}"
        log "${pkgs[*]} installed in $((SECONDS - t0)) s"
    fi
}

# Debian's Gajim 1.7, the headless desktop, xdotool (clicks and keys in its command window),
# and the user.
ensure_gajim() {
    ensure_cmds gajim:gajim Xvfb:xvfb import:imagemagick dbus-daemon:dbus-daemon gdbus:libglib2.0-bin \
        xdotool:xdotool
    if ! id -u "$GUI_USER" >/dev/null 2>&1; then
        log "useradd $GUI_USER (the unprivileged user the GUI client tests run as)"
        as_root useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$GUI_USER"
    fi
}

# Debian's Psi+ 1.4 (after ensure_gajim: same desktop, and xdotool to press its Return key).
ensure_psi() {
    ensure_gajim
    ensure_cmds psi-plus:psi-plus
}

# A virtualenv with the pinned packages of tests/integration/requirements.txt. Rebuilt only
# when the requirements change (a stamp file holds their checksum).
ensure_pyenv() {
    local stamp="$PYENV/.requirements.sha256" want
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [ -x "$PYENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    local py
    py="$(command -v python3 || true)"
    if [ -z "$py" ]; then
        apt_install python3 python3-venv
        py="$(command -v python3)"
    fi
    local t0=$SECONDS
    log "creating $PYENV (python: $py, $("$py" --version 2>&1))"
    rm -rf "$PYENV"
    if ! "$py" -m venv "$PYENV" >/dev/null 2>&1; then
        rm -rf "$PYENV"
        apt_install python3-venv
        "$py" -m venv "$PYENV"
    fi
    "$PYENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$want" >"$stamp"
    log "python packages installed in $((SECONDS - t0)) s"
}

# The tools tests/integration/test_package.py runs on the .deb: Debian's lintian,
# systemd-analyze (package systemd; it checks unit files without a running systemd), and
# strace (the syscalls the binary makes, against the unit's SystemCallFilter=).
ensure_package_tools() {
    ensure_cmds lintian:lintian systemd-analyze:systemd strace:strace
}

# Debian's nginx (the light flavour: TLS, HTTP/2, limit_req) for the test of the reverse proxy
# docs/operations.md documents (tests/integration/test_operations_docs.py). The test runs its
# own instance on a private port; the package's own service is not used.
ensure_nginx() {
    if [ -x /usr/sbin/nginx ]; then
        return 0
    fi
    local t0=$SECONDS
    apt_install nginx-light
    log "nginx installed in $((SECONDS - t0)) s"
}

# cargo-deb (crates.io), pinned, for scripts/package. `cargo install` builds it once (about
# 2 minutes on 2 cores) into ~/.cargo/bin, where later runs find it.
CARGO_DEB_VERSION=3.8.0
ensure_cargo_deb() {
    if cargo deb --version 2>/dev/null | grep -qxF "cargo-deb $CARGO_DEB_VERSION"; then
        return 0
    fi
    local t0=$SECONDS
    log "cargo install cargo-deb $CARGO_DEB_VERSION --locked (once; kept in ~/.cargo/bin)"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
    log "cargo-deb installed in $((SECONDS - t0)) s"
}

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found: this repository needs a Rust toolchain (rustup)" >&2
        return 1
    fi
}
