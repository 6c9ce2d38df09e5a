#!/usr/bin/env bash
# The GPU check: on a machine with a GPU (no Node.js or network needed there), measures
#   - WebGPU vs CPU logits and states (max abs and max relative error) on models/mm-rec-tiny
#     and on a random 100M model that the kit exports there (the kit's first run on PyTorch 2.x),
#   - prefill tokens/s (512-token prompt) and decode tokens/s at batch 1, 16 and 64, WebGPU vs CPU,
#   - the real server over HTTP with 16 concurrent streams, WebGPU and CPU,
#   - kit training tokens/s, CUDA vs CPU,
# and prints a markdown table (also written to $OUT/gpu-check.md when OUT is set, with
# gpu-check.json and the stage logs in gpu-check-logs.tar.gz).
#
#   bash scripts/gpu-check/prepare.sh        here, once: builds .gpu-check/ (Node.js, the bundled server, onnxruntime, Vulkan loader, data)
#   bash scripts/gpu-check/run.sh            there, with .gpu-check/ carried along
#   bash scripts/gpu-check/run.sh --dry-run  here: every stage, with the CPU in place of WebGPU and CUDA
#
# Options: --device D (webgpu; what stands against the CPU provider), --train-device D (cuda),
# --dry-run (= --device cpu --train-device cpu), --deadline S (total seconds, default 420),
# --python P (default: the first of python3, /usr/bin/python3 that imports torch).
# Every stage has its own time limit and the whole run a deadline; a stage that fails or
# runs out of time is reported as such and the others still run.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
KIT="$ROOT/.gpu-check"
DEVICE=webgpu
TRAIN_DEVICE=cuda
DEADLINE_S=420
PY=
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DEVICE=cpu TRAIN_DEVICE=cpu ;;
    --device) DEVICE="$2"; shift ;;
    --train-device) TRAIN_DEVICE="$2"; shift ;;
    --deadline) DEADLINE_S="$2"; shift ;;
    --python) PY="$2"; shift ;;
    *) echo "gpu-check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[ -d "$KIT" ] || { echo "gpu-check: $KIT is missing: run bash scripts/gpu-check/prepare.sh first (and carry .gpu-check)" >&2; exit 2; }
if [ -z "$PY" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PY="$p"; break; fi
  done
fi
[ -n "$PY" ] || { echo "gpu-check: no python3 with PyTorch found (give --python)" >&2; exit 2; }

START=$SECONDS
END=$((START + DEADLINE_S))
WORK="$(mktemp -d /tmp/mmrec-gpu-check.XXXXXX)"
RES="$WORK/results"
mkdir -p "$RES" "$WORK/logs" "$WORK/bin" "$WORK/models"
log() { echo "[gpu-check $((SECONDS - START))s] $*" >&2; }
echo "$DEVICE" > "$RES/device"
echo "$TRAIN_DEVICE" > "$RES/train_device"
echo "$DEADLINE_S" > "$RES/deadline"

# stage NAME LIMIT COMMAND…: runs COMMAND with at most LIMIT seconds (less if the deadline is nearer);
# stdout goes to results/NAME.out, stderr to logs/NAME.log, and the outcome to results/NAME.status.
stage() {
  local name="$1" limit="$2"
  shift 2
  local left=$((END - SECONDS))
  echo "$name" >> "$RES/stages"
  if [ "$left" -lt 10 ]; then
    echo "skipped (total deadline of ${DEADLINE_S}s reached)" > "$RES/$name.status"
    log "$name: skipped, deadline reached"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit="$left"
  local t0=$SECONDS rc status
  timeout -k 5 "$limit" "$@" > "$RES/$name.out" 2> "$WORK/logs/$name.log"
  rc=$?
  case "$rc" in
    0) status=ok ;;
    124 | 137) status="timed out (limit ${limit}s)" ;;
    *) status="failed (exit $rc)" ;;
  esac
  echo "$status" > "$RES/$name.status"
  echo $((SECONDS - t0)) > "$RES/$name.seconds"
  log "$name: $status in $((SECONDS - t0))s"
  if [ "$rc" -ne 0 ]; then tail -n 4 "$WORK/logs/$name.log" | cut -c1-300 | sed 's/^/    /' >&2; fi
  return "$rc"
}

# --- Node.js and the bundled app (Python's lzma and tarfile, so no xz binary is needed there).
log "unpacking .gpu-check into $WORK"
stage unpack 60 "$PY" -c '
import lzma, os, shutil, sys, tarfile
kit, work = sys.argv[1], sys.argv[2]
with lzma.open(os.path.join(kit, "node.xz")) as src, open(os.path.join(work, "bin", "node"), "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
os.chmod(os.path.join(work, "bin", "node"), 0o755)
with tarfile.open(os.path.join(kit, "app.tar.xz")) as t:
    t.extractall(work)
' "$KIT" "$WORK"
NODE="$WORK/bin/node"
APP="$WORK/app"

# --- Vulkan for WebGPU: the system's loader if it has one, else the carried one; and NVIDIA's
# driver manifest where the container runtime mounted it outside the loader's search path.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  export LD_LIBRARY_PATH="$KIT/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "carried Debian libvulkan1 ($KIT/vulkan)" > "$RES/vulkan_loader"
else
  echo "the system's ($(ldconfig -p | grep -m1 'libvulkan\.so\.1' | sed 's/.*=> //'))" > "$RES/vulkan_loader"
fi
icds=$(ls /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ')
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ "$icds" != *nvidia* ]] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NVIDIA_ICD" ]; then
  export VK_DRIVER_FILES="$NVIDIA_ICD" VK_ICD_FILENAMES="$NVIDIA_ICD"
fi
echo "${icds:-none in the standard folders of the loader}${VK_DRIVER_FILES:+; VK_DRIVER_FILES=$VK_DRIVER_FILES}${VK_ICD_FILENAMES:+; VK_ICD_FILENAMES=$VK_ICD_FILENAMES}" > "$RES/vulkan_drivers"

# --- The machine.
stage env 30 bash -c '
  echo "host: $(uname -srm), $(nproc) cores, $(awk "/MemTotal/ {printf \"%.0f GiB\", \$2 / 1048576}" /proc/meminfo)"
  if command -v nvidia-smi >/dev/null; then echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"; else echo "gpu: no nvidia-smi"; fi
  echo "python: $("$1" -c "import sys, torch; print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda available:\", torch.cuda.is_available())" 2>&1 | tail -1)"
  echo "node: $("$2" --version 2>&1)"
  echo "onnxruntime-node: $("$2" -e "const o = require(\"$3/node_modules/onnxruntime-node\"); console.log(require(\"$3/node_modules/onnxruntime-node/package.json\").version, JSON.stringify(o.listSupportedBackends()))" 2>&1)"
' _ "$PY" "$NODE" "$APP"

MEASURE=("$NODE" "$APP/measure.js")
TINY="$ROOT/models/mm-rec-tiny"
BIG="$WORK/models/mm-rec-100m"

stage parity-tiny 90 "${MEASURE[@]}" parity "$TINY" --device "$DEVICE"
stage export-100m 150 bash -c 'cd "$1/kit" && PYTHONUNBUFFERED=1 "$2" -m mmrec.export --random --preset 100m --out "$3"' _ "$ROOT" "$PY" "$BIG"
if [ -f "$BIG/model.onnx" ]; then
  stage parity-100m 90 "${MEASURE[@]}" parity "$BIG" --device "$DEVICE"
fi
for model in tiny 100m; do
  dir="$TINY"
  [ "$model" = 100m ] && dir="$BIG"
  [ -f "$dir/model.onnx" ] || continue
  stage "bench-$model-$DEVICE" 75 "${MEASURE[@]}" bench "$dir" --device "$DEVICE"
  [ "$DEVICE" = cpu ] || stage "bench-$model-cpu" 75 "${MEASURE[@]}" bench "$dir" --device cpu
done

# Kit training throughput: the tiny preset, batch 64, up to 300 steps or the stage limit
# (the log every 10 steps holds the tokens/s either way).
for dev in "$TRAIN_DEVICE" cpu; do
  [ "$dev" = cpu ] && [ "$TRAIN_DEVICE" = cpu ] && [ -f "$RES/train-cpu.status" ] && continue
  stage "train-$dev" 60 bash -c 'cd "$1/kit" && PYTHONUNBUFFERED=1 "$2" -m mmrec.train --data "$3" --out "$4" --preset tiny --device "$5" \
      --steps 300 --batch-size 64 --max-len 512 --warmup 10 --log-every 10 --ckpt-every 100000 --threads "$(nproc)"' \
    _ "$ROOT" "$PY" "$KIT/train.mmrecds" "$WORK/train-$dev" "$dev"
  cp "$WORK/train-$dev/train-log.jsonl" "$RES/train-$dev.jsonl" 2>/dev/null
done

# The real server, 16 concurrent streamed chat completions of 64 tokens.
SERVE_MODEL="$TINY"
[ -f "$BIG/model.onnx" ] && SERVE_MODEL="$BIG"
stage "serve-$DEVICE" 90 "${MEASURE[@]}" serve "$SERVE_MODEL" --device "$DEVICE" --server "$APP/server.js" --streams 16 --tokens 64
[ "$DEVICE" = cpu ] || stage serve-cpu 90 "${MEASURE[@]}" serve "$SERVE_MODEL" --device cpu --server "$APP/server.js" --streams 16 --tokens 64

echo $((SECONDS - START)) > "$RES/total_seconds"
"$PY" "$ROOT/scripts/gpu-check/report.py" "$RES" "$WORK/gpu-check.json" > "$WORK/gpu-check.md"
cat "$WORK/gpu-check.md"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$WORK/gpu-check.md" "$WORK/gpu-check.json" "$OUT/"
  tar -C "$WORK" -czf "$OUT/gpu-check-logs.tar.gz" logs results
fi
log "done in $((SECONDS - START))s; work files in $WORK"
