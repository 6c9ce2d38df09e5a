# syntax=docker/dockerfile:1
#
# mmrec-server for a GPU host: CUDA 12 + cuDNN 9 runtime, Node 20, and
# onnxruntime-node with its CUDA 12 execution provider.
#
#   docker build -t mmrec-server .
#   docker run --gpus all -p 8000:8000 -v "$PWD/models:/models:ro" mmrec-server
#
# Models are not in the image: mount a directory of model directories at
# /models (each served under its directory name). /states, owned by the server's
# user, is where a volume for MMREC_STATE_CACHE_DIR can go. Without a GPU the server
# falls back to CPU (--device auto) and says so in its log.
#
# Two GPU providers: CUDA (the provider libraries fetched by the install step below) and
# WebGPU, built into onnxruntime-node and running on Vulkan. For WebGPU the image has the
# Vulkan loader (libvulkan1), and NVIDIA_DRIVER_CAPABILITIES includes "graphics", which
# makes the NVIDIA container runtime mount the driver's Vulkan ICD; the CUDA base image
# sets only "compute,utility".

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${CUDA_IMAGE}

# Node 20 from the official image (its binary needs glibc >= 2.28; Ubuntu 22.04 has 2.35).
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libvulkan1 \
 && rm -rf /var/lib/apt/lists/* \
 && node --version && npm --version

WORKDIR /app

# Dependencies first, so source changes do not re-run the install. The repository's
# .npmrc (which skips onnxruntime's CUDA download for CPU-only CI) is not copied;
# ONNXRUNTIME_NODE_INSTALL=cuda12 makes the install fetch the CUDA 12 provider.
# Dev dependencies stay: the server runs its TypeScript through tsx.
COPY package.json package-lock.json ./
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --no-audit --no-fund \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm cache clean --force

COPY tsconfig.json openapi.yaml ./
COPY src ./src

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin mmrec \
 && mkdir -p /models /states \
 && chown mmrec:mmrec /models /states
USER mmrec

ENV NODE_ENV=production \
    MMREC_HOST=0.0.0.0 \
    MMREC_PORT=8000 \
    MMREC_MODELS_DIR=/models \
    MMREC_DEVICE=auto \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
VOLUME ["/models"]
EXPOSE 8000

# /health is 503 while models load and 200 once every model is ready; it never needs the API key.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.MMREC_PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The server itself is PID 1 (not npm), so SIGTERM reaches it: it stops accepting,
# lets in-flight requests finish within MMREC_SHUTDOWN_TIMEOUT seconds, and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/server.ts"]
