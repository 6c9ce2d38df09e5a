#!/usr/bin/env bash
# Builds .gpu-check/, everything the GPU check (scripts/gpu-check/run.sh) needs on a
# machine that has a GPU but no Node.js and no network, in one ignored folder:
#
#   node.xz         this machine's Node.js binary, xz-compressed
#   app.tar.xz      the server, its model worker and the measurements (scripts/gpu-check/measure.ts),
#                   each bundled into one file by esbuild, beside the parts of onnxruntime-node they
#                   load at run time (its JavaScript, the N-API binding and libonnxruntime.so.1, which
#                   has the CPU and WebGPU providers built in; the CUDA provider is not bundled by npm)
#   vulkan/         Debian's Vulkan loader (apt-get download libvulkan1; dpkg -x): WebGPU runs on Vulkan
#   train.mmrecds   a small synthetic chat data set for the training-throughput stages
#
# The folder must stay under 64 MiB with the working tree (~16 MB) under 64 MiB in all;
# the sizes are printed at the end.
#
#   bash scripts/gpu-check/prepare.sh       (about 2 minutes on 2 cores; needs apt-get, xz, /usr/bin/python3)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
KIT="$ROOT/.gpu-check"
CONVERSATIONS="${CONVERSATIONS:-4000}"
ORT="$ROOT/node_modules/onnxruntime-node"
ESBUILD="$ROOT/node_modules/esbuild/bin/esbuild"
[ -x "$ESBUILD" ] || { echo "prepare: $ESBUILD is missing (npm ci first; esbuild comes with tsx)" >&2; exit 1; }
[ -f "$ORT/bin/napi-v6/linux/x64/libonnxruntime.so.1" ] || { echo "prepare: onnxruntime-node's Linux x64 library is missing" >&2; exit 1; }

# node.xz takes most of the time (xz -9 of ~100 MB): keep it when it is of this very binary.
NODE_ID="$(node --version) $(sha256sum "$(command -v node)" | cut -c1-16)"
if [ -f "$KIT/node.xz" ] && [ "$(cat "$KIT/node.id" 2>/dev/null)" = "$NODE_ID" ]; then
  mv "$KIT/node.xz" "$KIT.node.xz"
fi
rm -rf "$KIT"
mkdir -p "$KIT"
[ -f "$KIT.node.xz" ] && mv "$KIT.node.xz" "$KIT/node.xz"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "[prepare] bundling the server, the model worker and the measurements" >&2
APP="$WORK/app"
# One file per entry, side by side: the server finds its worker as ./model-worker.js.
# The banner gives the ESM bundle a `require` for the CommonJS dependencies inside it.
"$ESBUILD" "$ROOT/src/server.ts" "$ROOT/src/engine/model-worker.ts" "$ROOT/scripts/gpu-check/measure.ts" \
  --bundle --platform=node --format=esm --target=node20 --outdir="$APP" --entry-names='[name]' \
  --external:onnxruntime-node --external:better-sqlite3 --log-level=warning \
  --banner:js="import { createRequire as __mmrecCreateRequire } from 'node:module'; const require = __mmrecCreateRequire(import.meta.url);"
echo '{ "type": "module", "private": true }' > "$APP/package.json"
mkdir -p "$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/x64" "$APP/node_modules/onnxruntime-common/dist"
cp "$ORT/package.json" "$APP/node_modules/onnxruntime-node/"
cp -r "$ORT/dist" "$APP/node_modules/onnxruntime-node/"
# The binding and libonnxruntime.so.1 are all the native code: WebGPU (Dawn) is linked into the latter.
cp "$ORT/bin/napi-v6/linux/x64/onnxruntime_binding.node" "$ORT/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
# onnxruntime-common resolves to …/dist/cjs/index.js: its package is three levels up.
COMMON="$(cd "$ORT" && node -p "require('path').resolve(require.resolve('onnxruntime-common'), '../../..')")"
cp "$COMMON/package.json" "$APP/node_modules/onnxruntime-common/"
cp -r "$COMMON/dist/cjs" "$APP/node_modules/onnxruntime-common/dist/"
# better-sqlite3 (the server's store) finds its native binding through `bindings`, by its package's
# place on disk: it travels as a package, with the binding compiled here for this very Node.
SQLITE="$ROOT/node_modules/better-sqlite3"
mkdir -p "$APP/node_modules/better-sqlite3/build/Release"
cp -r "$SQLITE/package.json" "$SQLITE/lib" "$APP/node_modules/better-sqlite3/"
cp "$SQLITE/build/Release/better_sqlite3.node" "$APP/node_modules/better-sqlite3/build/Release/"
for dep in bindings file-uri-to-path; do cp -r "$ROOT/node_modules/$dep" "$APP/node_modules/"; done
find "$APP/node_modules" -name '*.map' -delete -o -name '*.d.ts' -delete
tar -C "$WORK" -cf - app | xz -9 -T0 > "$KIT/app.tar.xz"

if [ ! -f "$KIT/node.xz" ]; then
  echo "[prepare] compressing $(command -v node) ($(node --version))" >&2
  xz -9 -T0 -c "$(command -v node)" > "$KIT/node.xz.tmp" && mv "$KIT/node.xz.tmp" "$KIT/node.xz"
fi
echo "$NODE_ID" > "$KIT/node.id"

echo "[prepare] Debian's Vulkan loader (libvulkan1)" >&2
(cd "$WORK" && apt-get download -qq libvulkan1 2>/dev/null)
dpkg -x "$WORK"/libvulkan1_*.deb "$KIT/vulkan"
rm -rf "$KIT/vulkan/usr/share/doc"

echo "[prepare] a synthetic data set of $CONVERSATIONS conversations for the training stages" >&2
(cd "$ROOT/kit" && /usr/bin/python3 -m mmrec.corpus --out "$WORK/data" --conversations "$CONVERSATIONS" --heldout-per-family 1 >/dev/null)
(cd "$ROOT" && node --import tsx src/chat/prepare-cli.ts --input "$WORK/data/train.jsonl" --output "$KIT/train.mmrecds" >/dev/null)

echo "[prepare] .gpu-check:" >&2
du -ab "$KIT" | sort -k2 | awk -v root="$KIT/" '{ sub(root, "", $2); if ($2 !~ /\//) printf "  %8.1f MB  %s\n", $1 / 1e6, $2 }' >&2
total=$(du -sb "$KIT" | cut -f1)
tree=$(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
awk -v k="$total" -v t="$tree" 'BEGIN { printf "[prepare] total %.1f MiB; with the tracked working tree (%.1f MiB) %.1f MiB of the 64 MiB that may travel\n", k / 1048576, t / 1048576, (k + t) / 1048576 }' >&2
if [ $((total + tree)) -ge $((64 * 1048576)) ]; then
  echo "[prepare] too large to travel: lower CONVERSATIONS or leave something out" >&2
  exit 1
fi
