#!/usr/bin/env bash
# The one way owl's deployable binaries are built. deploy/Dockerfile runs exactly this
# script, and deploy/check.sh (called by tests/run) runs it with the dev profile, so the
# image's binaries come from the same command, sources, Cargo.lock and feature set as
# the binaries the test suite exercises; only the profile (and the target) differ.
#
# Usage: deploy/build.sh [--profile release|dev] [--target TRIPLE] [--out DIR]
#   builds   owl, owl-runtime      cargo build --locked --bins (default features)
#            owl-healthcheck       rustc, std only (deploy/healthcheck/healthcheck.rs)
#   copies   them to DIR (default: target/deploy/<profile>)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
target=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release|dev) ;;
  *) echo "build.sh: --profile must be release or dev" >&2; exit 2 ;;
esac
out=${out:-target/deploy/$profile}

# The cargo command. deploy/check.sh reads this line: keep it on one line.
cargo_args=(build --locked --bins --profile "$profile")
[ -n "$target" ] && cargo_args+=(--target "$target")
echo "==> cargo ${cargo_args[*]}"
cargo "${cargo_args[@]}"

dir=$profile
[ "$profile" = dev ] && dir=debug
bin=target/$dir
[ -n "$target" ] && bin=target/$target/$dir

mkdir -p "$out"
install -m 0755 "$bin/owl" "$bin/owl-runtime" "$out/"

# The container's health check: a std-only HTTP/1.0 GET of /healthz (distroless images
# have no shell or curl). Built with the same rustc that built owl.
rustc_args=(--edition 2021 -C opt-level=2 -C strip=symbols -o "$out/owl-healthcheck")
[ -n "$target" ] && rustc_args+=(--target "$target")
echo "==> rustc ${rustc_args[*]} deploy/healthcheck/healthcheck.rs"
rustc "${rustc_args[@]}" deploy/healthcheck/healthcheck.rs
echo "==> $out: owl owl-runtime owl-healthcheck"
