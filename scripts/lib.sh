# Shared helpers for scripts/dev and scripts/test. Source it; don't run it.
# Progress goes to stderr so stdout stays clean for the commands that follow.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export OH_DATA_DIR="${OH_DATA_DIR:-$ROOT/.data}"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run as root directly, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# Sets PYTHON to a python3 >= 3.11 that can make virtual environments; installs Debian's if needed.
ensure_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && _python_ok "$candidate" \
            && "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            PYTHON="$(command -v "$candidate")"
            return 0
        fi
    done
    command -v apt-get >/dev/null 2>&1 || die "need python3 >= 3.11 with venv; install it and retry"
    say "installing Debian's python3 and python3-venv"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv >&2
    _python_ok python3 || die "python3 is older than 3.11 ($(python3 --version 2>&1))"
    PYTHON="$(command -v python3)"
}


# Creates $ROOT/.venv and installs the project (editable, with the dev and matrix extras) and the
# development stack (devstack/, the `oneheart stack` plugin; never part of the production
# package) when either pyproject.toml changed since the last install.
ensure_venv() {
    local stamp="$VENV/.oneheart-installed" want
    if [ ! -x "$VENV/bin/python" ] || ! _python_ok "$VENV/bin/python"; then
        ensure_python
        say "creating $VENV with $PYTHON"
        "$PYTHON" -m venv "$VENV" >&2
        rm -f "$stamp"
    fi
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/devstack/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing the project into $VENV (pyproject.toml changed)"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev,matrix]" -e "$ROOT/devstack" >&2
        printf '%s\n' "$want" >"$stamp"
    fi
}

# Installs Debian's Node.js and npm when missing, and the front-end libraries the node serves
# (web/package.json, exactly as web/package-lock.json pins them) into web/node_modules when the
# lockfile changed since the last install. No install scripts run (none is needed; one would
# send telemetry).
ensure_web() {
    local web="$ROOT/web" stamp="$ROOT/web/node_modules/.oneheart-installed" want
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || die "need Node.js and npm; install them and retry"
        say "installing Debian's nodejs and npm"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >&2
    fi
    want="$(cat "$web/package.json" "$web/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing the front-end libraries into $web/node_modules (package-lock.json changed)"
        (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=warn) >&2
        printf '%s\n' "$want" >"$stamp"
    fi
}

# Installs Debian's Chromium when the machine has none: the browser tests drive it (through
# Playwright, which never downloads browsers of its own here).
ensure_chromium() {
    # Chromium for the browser tests, and a colour emoji font so the screenshots show the
    # pages' emoji (badges, streaks) as a phone would, not as empty boxes.
    if command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "need chromium for the browser tests; install it and retry"
    say "installing Debian's chromium and an emoji font (for the browser tests)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-noto-color-emoji >&2
}

# Exports the variables of $OH_DATA_DIR/stack.env (written by `oneheart stack up`).
load_stack_env() {
    [ -f "$OH_DATA_DIR/stack.env" ] || die "$OH_DATA_DIR/stack.env missing: did 'oneheart stack up' run?"
    set -a
    # shellcheck disable=SC1091
    . "$OH_DATA_DIR/stack.env"
    set +a
}
