#!/usr/bin/env bash
# setup.sh PROFILE — installs what patchbay needs on Debian 12 (only what is
# missing), builds the wasm dependencies from Debian's sources (cached), then
# configures and builds one build folder. Used by scripts/demo.sh (PROFILE
# "release": build/release) and scripts/test.sh (PROFILE "test": build/test,
# clang-14 with ASan/UBSan and the libFuzzer targets). Idempotent: a second
# run with nothing changed installs nothing and rebuilds nothing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
profile=${1:-}
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

case $profile in
release | test) ;;
*) echo "usage: scripts/setup.sh release|test" >&2; exit 2 ;;
esac

# node 20 cannot find Debian's acorn otherwise; the python shim is slow.
export NODE_PATH=/usr/share/nodejs
export EMSDK_PYTHON=/usr/bin/python3

# ---- system packages ---------------------------------------------------------
packages=(
	cmake make pkg-config gcc g++ clang-14 lld-14 libclang-rt-14-dev llvm-14-dev
	libclang-cpp14-dev libclang-14-dev liblld-14-dev
	emscripten nodejs dpkg-dev
	libwebsockets-dev libsodium-dev libmsgpack-dev libsqlite3-dev sqlite3 libpng-dev
	libhiredis-dev redis-server
	python3 python3-msgpack
	openssl
)
# (openssl: tests/security/tls makes a throwaway CA and certificate with it)
# (libhiredis-dev, redis-server: edge relays over Redis, `serve --redis`;
# the edge fault tests start their own redis-server on a free port)
# The browser tests drive Debian's Chromium with playwright-core, and its
# Firefox ESR over WebDriver BiDi (tests/firefox.mjs).
# The nREPL test drives patchbay nrepl with nREPL's own client
# (libnrepl-clojure, run by Debian's clojure on its JVM).
[[ $profile == test ]] && packages+=(chromium firefox-esr libnrepl-clojure clojure)
missing=()
for p in "${packages[@]}"; do
	# nodejs may come from elsewhere; a working node is what matters.
	if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ $status == ii* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root to install them"
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
else
	say "system packages present"
fi

# ---- JavaScript packages (tests and benchmarks), from the committed lockfile --
command -v npm >/dev/null || die "npm is missing (it comes with node; apt-get install npm)"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
	say "installing JavaScript packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
	say "JavaScript packages present"
fi

# ---- wasm dependencies (libsodium, msgpack-c from Debian sources) -------------
scripts/wasm-deps.sh build/wasm-deps

# ---- configure and build -------------------------------------------------------
dir=build/$profile
args=(-DPB_WASM_DEPS="$ROOT/build/wasm-deps")
if [[ $profile == test ]]; then
	args+=(-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DPB_SANITIZE=ON -DPB_FUZZ=ON)
else
	args+=(-DCMAKE_BUILD_TYPE=Release)
fi
if [[ ! -f $dir/CMakeCache.txt ]]; then
	say "configuring $dir"
	cmake -S . -B "$dir" "${args[@]}" >/dev/null
fi
say "building $dir"
cmake --build "$dir" -j "$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Built target|Building C|Linking C)|^(Consolidate|-- )' || true
[[ ${PIPESTATUS[0]} == 0 ]] || die "build failed in $dir"
say "built $dir"
