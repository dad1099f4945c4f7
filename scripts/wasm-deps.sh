#!/usr/bin/env bash
# wasm-deps.sh — build libsodium and msgpack-c as static WebAssembly libraries
# (for linking into patchbay's Emscripten MAIN_MODULE runtime) from Debian's
# source packages, using Debian's emscripten (emcc/emar 3.1.6).
#
# Usage: scripts/wasm-deps.sh BUILD_DIR        (e.g. build/wasm-deps)
#
# Results:
#   BUILD_DIR/include/  sodium.h, sodium/*, msgpack.h, msgpack/*
#   BUILD_DIR/lib/      libsodium.a, libmsgpack-c.a
#   BUILD_DIR/.stamp    source package versions + sha256 of this script
#   BUILD_DIR/src/      cached Debian source packages (reused on re-runs)
#
# If .stamp matches, the script exits at once without touching apt or the
# network.  Fetching sources needs root: it temporarily adds a deb-src entry
# (/etc/apt/sources.list.d/patchbay-src.sources), runs apt-get update and
# apt-get source, then removes the entry again and re-runs apt-get update.
set -euo pipefail

PROG=${0##*/}
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf 'wasm deps: %s\n' "$*"; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $PROG BUILD_DIR" >&2; exit 2; }

# node 20 cannot find Debian's acorn otherwise; the python shim is slow.
# (No EM_CACHE: Debian's config sets FROZEN_CACHE, so emcc only reads
# /usr/share/emscripten/cache and works as any user.)
export NODE_PATH=/usr/share/nodejs
export EMSDK_PYTHON=/usr/bin/python3

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
SCRIPT_SHA=$(sha256sum -- "$SCRIPT_PATH" | cut -d' ' -f1)

mkdir -p -- "$1" || die "cannot create build directory '$1'"
BUILD_DIR=$(cd -- "$1" && pwd)
SRC_DIR=$BUILD_DIR/src
STAMP=$BUILD_DIR/.stamp

# Serialise concurrent runs on the same BUILD_DIR (a read-only fd is enough
# for flock, so a read-only BUILD_DIR can still be checked for freshness).
[[ -e $BUILD_DIR/.lock ]] || : >"$BUILD_DIR/.lock" ||
	die "cannot create $BUILD_DIR/.lock"
exec 9<"$BUILD_DIR/.lock"
flock 9 || die "cannot lock $BUILD_DIR/.lock"

# Source package  <->  native -dev package whose version we want to match.
PKGS=(libsodium msgpack-c)
declare -A DEVPKG=([libsodium]=libsodium-dev [msgpack-c]=libmsgpack-dev)
declare -A VER=()

# Version wanted for a source package: the source version of the installed
# native -dev package (so wasm and native builds agree), else whatever source
# package is already cached, else "" (= take apt's candidate).
wanted_version() {
	local pkg=$1 v dscs
	v=$(dpkg-query -W -f='${db:Status-Abbrev} ${source:Version}' \
		"${DEVPKG[$pkg]}" 2>/dev/null || true)
	if [[ $v == ii* ]]; then
		printf '%s' "${v##* }"
		return
	fi
	shopt -s nullglob
	dscs=("$SRC_DIR/${pkg}"_*.dsc)
	shopt -u nullglob
	if [[ ${#dscs[@]} -eq 1 ]]; then
		v=${dscs[0]##*/}; v=${v#"${pkg}_"}; v=${v%.dsc}
		printf '%s' "$v"
	fi
}

dsc_path() {  # $1 = package, $2 = version (epoch is not part of file names)
	printf '%s/%s_%s.dsc' "$SRC_DIR" "$1" "${2#*:}"
}

stamp_text() {
	local pkg
	for pkg in "${PKGS[@]}"; do printf '%s %s\n' "$pkg" "${VER[$pkg]}"; done
	printf 'emscripten %s\n' "$(dpkg-query -W -f='${Version}' emscripten 2>/dev/null || echo unknown)"
	printf 'script %s\n' "$SCRIPT_SHA"
}

# ---------------------------------------------------------------- up to date?
for pkg in "${PKGS[@]}"; do VER[$pkg]=$(wanted_version "$pkg"); done
if [[ -n ${VER[libsodium]} && -n ${VER[msgpack-c]} && -f $STAMP &&
	-f $BUILD_DIR/lib/libsodium.a && -f $BUILD_DIR/lib/libmsgpack-c.a &&
	-f $BUILD_DIR/include/sodium.h && -f $BUILD_DIR/include/msgpack.h ]] &&
	[[ $(cat -- "$STAMP") == "$(stamp_text)" ]]; then
	say "up to date (libsodium ${VER[libsodium]}, msgpack-c ${VER[msgpack-c]})"
	exit 0
fi
rm -f -- "$STAMP"

command -v emcc >/dev/null || die "emcc not found (apt-get install emscripten)"
command -v emar >/dev/null || die "emar not found (apt-get install emscripten)"

# ------------------------------------------------------------- fetch sources
APT_SRC_ENTRY=/etc/apt/sources.list.d/patchbay-src.sources
APT_SRC_ADDED=0

remove_apt_entry() {
	[[ $APT_SRC_ADDED -eq 1 ]] || return 0
	APT_SRC_ADDED=0
	rm -f -- "$APT_SRC_ENTRY"
	say "removed temporary deb-src entry; apt-get update"
	apt-get update -qq ||
		echo "$PROG: warning: final 'apt-get update' failed; run it by hand" >&2
}
trap remove_apt_entry EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_fetch=()
for pkg in "${PKGS[@]}"; do
	if [[ -z ${VER[$pkg]} || ! -f $(dsc_path "$pkg" "${VER[$pkg]}") ]]; then
		need_fetch+=("$pkg")
	fi
done

if [[ ${#need_fetch[@]} -gt 0 ]]; then
	[[ $(id -u) -eq 0 ]] || die "source packages (${need_fetch[*]}) are not cached in $SRC_DIR;
  fetching them needs root (it temporarily adds a deb-src entry to apt).
  Re-run as root: sudo $0 $1"
	command -v dpkg-source >/dev/null || die "dpkg-source not found (apt-get install dpkg-dev)"
	[[ ! -e $APT_SRC_ENTRY ]] ||
		echo "$PROG: warning: replacing leftover $APT_SRC_ENTRY" >&2

	# Mirror the stanza of debian.sources that carries the release's own suite.
	# shellcheck source=/dev/null
	codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	[[ -n $codename ]] || die "cannot find VERSION_CODENAME in /etc/os-release"
	src_list=/etc/apt/sources.list.d/debian.sources
	[[ -r $src_list ]] || die "$src_list not found; cannot derive a deb-src entry"
	entry=$(awk -v cn="$codename" '
		BEGIN { RS = ""; FS = "\n" }
		{
			ok = 0
			for (i = 1; i <= NF; i++)
				if ($i ~ /^Suites:/) {
					n = split(substr($i, 8), s, /[ \t]+/)
					for (j = 1; j <= n; j++) if (s[j] == cn) ok = 1
				}
			if (!ok) next
			keep = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^#/) continue
				if ($i ~ /^[A-Za-z-]+:/)
					keep = ($i ~ /^(URIs|Suites|Components|Signed-By):/)
				if (keep) print $i
			}
			exit
		}' "$src_list")
	[[ $entry == *URIs:* ]] || die "no '$codename' stanza in $src_list"

	mkdir -p -- "$SRC_DIR"
	say "adding temporary deb-src entry $APT_SRC_ENTRY"
	APT_SRC_ADDED=1
	printf 'Types: deb-src\n%s\n' "$entry" >"$APT_SRC_ENTRY"
	say "apt-get update"
	apt-get update -qq || die "apt-get update failed"

	for pkg in "${need_fetch[@]}"; do
		spec=$pkg${VER[$pkg]:+=${VER[$pkg]}}
		say "fetching source package $spec"
		# Download into a scratch dir that _apt can write to (avoids apt's
		# "unsandboxed download" warning), then keep only the source files.
		dl=$(mktemp -d "$SRC_DIR/.dl.XXXXXX")
		chmod 755 -- "$dl"
		chown _apt: -- "$dl" 2>/dev/null || true
		(cd -- "$dl" && apt-get source -qq --download-only -- "$spec") ||
			{ rm -rf -- "$dl"; die "apt-get source $spec failed"; }
		shopt -s nullglob
		dscs=("$dl/${pkg}"_*.dsc)
		shopt -u nullglob
		[[ ${#dscs[@]} -eq 1 ]] || { rm -rf -- "$dl"; die "no .dsc downloaded for $pkg"; }
		v=${dscs[0]##*/}; v=${v#"${pkg}_"}; v=${v%.dsc}
		if [[ -z ${VER[$pkg]} ]]; then VER[$pkg]=$v; fi
		chown -R root: -- "$dl"
		mv -f -- "$dl"/* "$SRC_DIR"/
		rm -rf -- "$dl"
	done
	remove_apt_entry
fi

# Unpack (dpkg-source applies the Debian patches) into src/<pkg>-<version>.
declare -A TREE=()
for pkg in "${PKGS[@]}"; do
	dsc=$(dsc_path "$pkg" "${VER[$pkg]}")
	[[ -f $dsc ]] || die "missing $dsc after download"
	TREE[$pkg]=$SRC_DIR/$pkg-${VER[$pkg]#*:}
	if [[ ! -f ${TREE[$pkg]}/.unpacked ]]; then
		rm -rf -- "${TREE[$pkg]}"
		say "unpacking ${dsc##*/}"
		# (gpgv cannot check the maintainer signature without debian-keyring;
		# apt already verified the files against the signed Sources index.)
		log=$SRC_DIR/.dpkg-source.log
		dpkg-source -x "$dsc" "${TREE[$pkg]}" >"$log" 2>&1 ||
			{ cat -- "$log" >&2; die "dpkg-source -x $dsc failed"; }
		rm -f -- "$log"
		touch -- "${TREE[$pkg]}/.unpacked"
	fi
done

# ------------------------------------------------------------------- compile
# Everything goes into BUILD_DIR/.work first and is moved into place (and the
# stamp written) only after both libraries built and passed the symbol check.
START=$SECONDS
JOBS=$(nproc 2>/dev/null || echo 2)
WORK=$BUILD_DIR/.work
rm -rf -- "$WORK" "${BUILD_DIR:?}/include" "${BUILD_DIR:?}/lib"
mkdir -p -- "$WORK/include/sodium" "$WORK/include/msgpack" "$WORK/lib" \
	"$WORK/obj/libsodium" "$WORK/obj/msgpack-c"

# cc_one SOURCE...: compile sources (paths relative to $CC_ROOT) into $CC_OBJ
# with the flags in $CC_FLAGS (one per line).  Run in parallel by xargs.
cc_one() {
	local rel obj flags
	mapfile -t flags <<<"$CC_FLAGS"
	for rel in "$@"; do
		obj=$CC_OBJ/${rel//\//__}
		obj=${obj%.c}.o
		if ! emcc "${flags[@]}" -c "$CC_ROOT/$rel" -o "$obj" 2>"$obj.log"; then
			printf '%s: error: compiling %s failed:\n' "$CC_PROG" "$rel" >&2
			cat -- "$obj.log" >&2
			return 1
		fi
	done
}
export -f cc_one

# compile_lib NAME SRC_ROOT LIBFILE FLAG... -- SOURCE...
compile_lib() {
	local name=$1 root=$2 lib=$3 flags=() srcs=() objs=()
	shift 3
	while [[ $1 != -- ]]; do flags+=("$1"); shift; done
	shift
	srcs=("$@")
	say "compiling $name (${#srcs[@]} files, $JOBS jobs)…"
	printf '%s\0' "${srcs[@]}" |
		CC_FLAGS=$(printf '%s\n' "${flags[@]}") CC_ROOT=$root \
		CC_OBJ=$WORK/obj/$name CC_PROG=$PROG \
		xargs -0 -n 2 -P "$JOBS" bash -c 'cc_one "$@"' cc_one ||
		die "$name: compilation failed (objects and logs in $WORK/obj/$name)"
	mapfile -t objs < <(find "$WORK/obj/$name" -name '*.o' | LC_ALL=C sort)
	[[ ${#objs[@]} -eq ${#srcs[@]} ]] || die "$name: expected ${#srcs[@]} objects, got ${#objs[@]}"
	say "archiving ${lib##*/}"
	emar crs "$lib" "${objs[@]}" || die "emar failed for $lib"
}

# require_symbols LIB SYMBOL...: fail unless LIB defines every SYMBOL.
require_symbols() {
	local lib=$1 defined missing=() s
	shift
	defined=$(emnm --defined-only -j "$lib" 2>/dev/null | LC_ALL=C sort -u) ||
		die "emnm failed on $lib"
	for s in "$@"; do
		grep -qxF -- "$s" <<<"$defined" || missing+=("$s")
	done
	[[ ${#missing[@]} -eq 0 ]] || die "${lib##*/} lacks required symbols: ${missing[*]}"
}

# --- libsodium
S=${TREE[libsodium]}
SL=$S/src/libsodium
sodium_ver=$(sed -n 's/^AC_INIT(\[libsodium\],[[:space:]]*\[\([^]]*\)\].*/\1/p' "$S/configure.ac")
sodium_major=$(sed -n 's/^SODIUM_LIBRARY_VERSION_MAJOR=\([0-9]*\).*/\1/p' "$S/configure.ac")
sodium_minor=$(sed -n 's/^SODIUM_LIBRARY_VERSION_MINOR=\([0-9]*\).*/\1/p' "$S/configure.ac")
[[ -n $sodium_ver && -n $sodium_major && -n $sodium_minor ]] ||
	die "cannot read libsodium version numbers from $S/configure.ac"
cp -- "$SL/include/sodium.h" "$WORK/include/"
cp -- "$SL"/include/sodium/*.h "$WORK/include/sodium/"
sed -e "s/@VERSION@/$sodium_ver/" \
	-e "s/@SODIUM_LIBRARY_VERSION_MAJOR@/$sodium_major/" \
	-e "s/@SODIUM_LIBRARY_VERSION_MINOR@/$sodium_minor/" \
	-e "s/@SODIUM_LIBRARY_MINIMAL_DEF@//" \
	"$SL/include/sodium/version.h.in" >"$WORK/include/sodium/version.h"
! grep -q '@[A-Za-z_]*@' "$WORK/include/sodium/version.h" ||
	die "unsubstituted placeholder left in sodium/version.h"

# Defines: what libsodium's configure finds under emscripten (see configure.ac
# and dist-build/emscripten.sh) minus everything it skips there: no
# mmap/mprotect/mlock (no page protection in wasm), no getrandom/getentropy
# (randombytes uses its __EMSCRIPTEN__ JS path), no pthreads/atomics, no
# x86 intrinsics/asm, and no HAVE_TI_MODE (emulated 128-bit maths is slower).
SODIUM_FLAGS=(-O2 -fPIC -fvisibility=hidden -fno-strict-aliasing -fwrapv
	"-ffile-prefix-map=$S=libsodium" "-ffile-prefix-map=$WORK/include=include"
	-DCONFIGURED=1 -DNATIVE_LITTLE_ENDIAN=1
	-DHAVE_C_VARARRAYS=1 -DHAVE_ALLOCA=1 -DHAVE_ALLOCA_H=1 -DHAVE_SYS_MMAN_H=1
	-DHAVE_POSIX_MEMALIGN=1 -DHAVE_EXPLICIT_BZERO=1
	-I "$WORK/include/sodium" -I "$SL/include/sodium")
# randombytes/{sysrandom,internal} are left out as upstream's Makefile.am does
# for emscripten: randombytes.c then uses crypto.getRandomValues (browser) or
# require('crypto').randomBytes (node) through EM_ASM.
mapfile -t sodium_srcs < <(cd -- "$SL" && find . -name '*.c' \
	! -path './randombytes/sysrandom/*' ! -path './randombytes/internal/*' |
	sed 's|^\./||' | LC_ALL=C sort)
compile_lib libsodium "$SL" "$WORK/lib/libsodium.a" "${SODIUM_FLAGS[@]}" -- "${sodium_srcs[@]}"
require_symbols "$WORK/lib/libsodium.a" sodium_init sodium_memzero \
	crypto_sign_seed_keypair crypto_sign_detached crypto_sign_verify_detached \
	crypto_sign_ed25519_detached crypto_sign_ed25519_verify_detached \
	crypto_generichash crypto_generichash_blake2b \
	crypto_auth crypto_auth_verify crypto_auth_hmacsha512256 \
	randombytes_buf randombytes_random

# --- msgpack-c
M=${TREE[msgpack-c]}
cp -- "$M/include/msgpack.h" "$WORK/include/"
cp -- "$M"/include/msgpack/*.h "$WORK/include/msgpack/"
for tmpl in "$M"/cmake/*.h.in; do
	out=$WORK/include/msgpack/$(basename -- "$tmpl" .in)
	sed -e 's/@MSGPACK_ENDIAN_BIG_BYTE@/0/g' \
		-e 's/@MSGPACK_ENDIAN_LITTLE_BYTE@/1/g' "$tmpl" >"$out"
	! grep -q '@[A-Za-z_]*@' "$out" ||
		die "unsubstituted placeholder left in ${out#"$WORK/"}: $(grep -o '@[A-Za-z_]*@' "$out" | head -1)"
done
for h in sysdep.h pack_template.h; do
	[[ -f $WORK/include/msgpack/$h ]] || die "msgpack-c: $h was not generated"
done
MSGPACK_FLAGS=(-O2 -fPIC "-ffile-prefix-map=$M=msgpack-c"
	"-ffile-prefix-map=$WORK/include=include" -I "$WORK/include")
mapfile -t msgpack_srcs < <(cd -- "$M" && find src -maxdepth 1 -name '*.c' | LC_ALL=C sort)
compile_lib msgpack-c "$M" "$WORK/lib/libmsgpack-c.a" "${MSGPACK_FLAGS[@]}" -- "${msgpack_srcs[@]}"
require_symbols "$WORK/lib/libmsgpack-c.a" msgpack_unpack_next msgpack_unpacker_init \
	msgpack_unpacker_next msgpack_object_print msgpack_zone_init msgpack_version

# --- install
mv -- "$WORK/include" "$BUILD_DIR/include"
mv -- "$WORK/lib" "$BUILD_DIR/lib"
rm -rf -- "$WORK"
stamp_text >"$STAMP"
say "built in $((SECONDS - START))s: $(du -h "$BUILD_DIR/lib/libsodium.a" | cut -f1) libsodium.a, $(du -h "$BUILD_DIR/lib/libmsgpack-c.a" | cut -f1) libmsgpack-c.a (libsodium ${VER[libsodium]}, msgpack-c ${VER[msgpack-c]})"
