#!/usr/bin/env bash
# Packages the owl runtime (the `bootstrap` of a provided.al2023 Lambda function that
# runs OpenWhisk actions; see docs/runtime.md).
#
# Usage: deploy/runtime/package.sh [options]
#   --out DIR            where the zips go (default: target/lambda)
#   --target TRIPLE      cargo target (e.g. x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu);
#                        default: the host's. Lambda's provided.al2023 has glibc 2.34.
#   --profile NAME       cargo profile (default: release)
#   --binary PATH        use an already built owl-runtime instead of building one
#   --action PATH        also build a self-contained function zip with this action
#                        (a .js / .py source file, a .zip, or a directory)
#   --kind KIND          the action's OpenWhisk kind (nodejs:20, python:3.11, ...);
#                        written as OW_ACTION_KIND into the printed deploy hints
#   --main NAME          the action's entry function (default: main)
#   --node-dist PATH     a Node.js Linux binary tarball (node-vX.Y.Z-linux-x64.tar.xz)
#                        → an interpreter layer providing /opt/bin/node
#   --python-dist PATH   a relocatable CPython tarball (e.g. python-build-standalone
#                        "install_only" .tar.gz) → an interpreter layer providing
#                        /opt/bin/python3
#
# Produces:
#   owl-runtime-layer.zip       bootstrap (0755) at the root → /opt/bootstrap
#   <action>-function.zip       bootstrap + the action (with --action)
#   node-layer.zip / python-layer.zip   interpreter layers (with --node-dist / --python-dist)
#
# provided.al2023 has no Node.js or Python. The interpreter source is an argument
# because this machine cannot download it: fetch the tarball wherever you build
# releases (nodejs.org/dist, github.com/astral-sh/python-build-standalone) and pass
# the local path. Any layer that puts `node` / `python3` on PATH (/opt/bin) works,
# or set OW_NODE / OW_PYTHON on the function to the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=target/lambda
target=""
profile=release
binary=""
action=""
kind=""
main=main
node_dist=""
python_dist=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --action) action=$2; shift 2 ;;
    --kind) kind=$2; shift 2 ;;
    --main) main=$2; shift 2 ;;
    --node-dist) node_dist=$2; shift 2 ;;
    --python-dist) python_dist=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

command -v python3 >/dev/null || { echo "package.sh: python3 is needed to write the zips" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "$binary" ]; then
  # Only the runtime's crate and the vocabulary it uses: not the gateway.
  args=(build -p owl-runtime --bin owl-runtime --profile "$profile")
  [ -n "$target" ] && args+=(--target "$target")
  echo "==> cargo ${args[*]}"
  cargo "${args[@]}"
  dir=$profile
  [ "$profile" = dev ] && dir=debug
  if [ -n "$target" ]; then binary=target/$target/$dir/owl-runtime; else binary=target/$dir/owl-runtime; fi
fi
[ -x "$binary" ] || { echo "package.sh: $binary is not an executable" >&2; exit 1; }

# zip_from SRC_DIR ZIP: zips a directory, keeping execute bits and symlinks as files.
zip_from() {
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            info = zipfile.ZipInfo(rel)
            mode = os.stat(path).st_mode
            info.external_attr = ((0o755 if mode & 0o111 else 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The runtime layer: /opt/bootstrap.
mkdir -p "$stage/layer"
install -m 0755 "$binary" "$stage/layer/bootstrap"
rm -f "$out/owl-runtime-layer.zip"
zip_from "$stage/layer" "$out/owl-runtime-layer.zip"
echo "==> $out/owl-runtime-layer.zip"

# A self-contained function: bootstrap + action.
if [ -n "$action" ]; then
  [ -e "$action" ] || { echo "package.sh: $action does not exist" >&2; exit 1; }
  name=$(basename "$action"); name=${name%.*}
  mkdir -p "$stage/fn"
  install -m 0755 "$binary" "$stage/fn/bootstrap"
  if [ -d "$action" ]; then
    cp -R "$action"/. "$stage/fn/"
    handler="."
  else
    cp "$action" "$stage/fn/"
    handler=$(basename "$action")
  fi
  rm -f "$out/$name-function.zip"
  zip_from "$stage/fn" "$out/$name-function.zip"
  echo "==> $out/$name-function.zip"
  echo "    create it with: --runtime provided.al2023 --handler '$handler'"
  echo "    and environment: OW_ACTION_MAIN=$main${kind:+ OW_ACTION_KIND=$kind}"
fi

if [ -n "$node_dist" ]; then
  [ -f "$node_dist" ] || { echo "package.sh: $node_dist is not a file" >&2; exit 1; }
  mkdir -p "$stage/node/node"
  tar -xf "$node_dist" -C "$stage/node/node" --strip-components=1
  [ -x "$stage/node/node/bin/node" ] || { echo "package.sh: no bin/node in $node_dist" >&2; exit 1; }
  mkdir -p "$stage/node/bin"
  printf '#!/bin/sh\nexec /opt/node/bin/node "$@"\n' > "$stage/node/bin/node"
  chmod 0755 "$stage/node/bin/node"
  rm -rf "$stage/node/node/include" "$stage/node/node/share"
  rm -f "$out/node-layer.zip"
  zip_from "$stage/node" "$out/node-layer.zip"
  echo "==> $out/node-layer.zip (/opt/bin/node)"
fi

if [ -n "$python_dist" ]; then
  [ -f "$python_dist" ] || { echo "package.sh: $python_dist is not a file" >&2; exit 1; }
  mkdir -p "$stage/py/python"
  tar -xf "$python_dist" -C "$stage/py/python" --strip-components=1
  [ -x "$stage/py/python/bin/python3" ] || { echo "package.sh: no bin/python3 in $python_dist" >&2; exit 1; }
  mkdir -p "$stage/py/bin"
  printf '#!/bin/sh\nexec /opt/python/bin/python3 "$@"\n' > "$stage/py/bin/python3"
  chmod 0755 "$stage/py/bin/python3"
  rm -f "$out/python-layer.zip"
  zip_from "$stage/py" "$out/python-layer.zip"
  echo "==> $out/python-layer.zip (/opt/bin/python3)"
fi
