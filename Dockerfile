# syntax=docker/dockerfile:1
#
# mmrec-server for a GPU host: CUDA 12 + cuDNN 9 runtime, Node 26 (the current LTS), the
# server built to JavaScript with production dependencies only, onnxruntime-node
# with its CUDA 12 execution provider, and models/mm-rec-tiny baked in.
#
#   docker build -t mmrec-server .                      # the serving image (default target)
#   docker build -t mmrec-server:train --target train . # the same, plus the model kit and a CUDA PyTorch for fine-tuning
#   docker run --gpus all -p 8000:8000 mmrec-server     # serves mm-rec-tiny
#   docker run --gpus all -p 8000:8000 -v "$PWD/models:/models:ro" mmrec-server   # serves your models instead
#
# /models holds the served model directories (each served under its directory
# name): mm-rec-tiny is there, and a directory mounted on /models replaces it.
# /data is the data directory (--data-dir: files, fine-tuning jobs, fine-tuned
# models, the database); mount a volume there to keep them. /states, owned by the
# server's user, is where a volume for MMREC_STATE_CACHE_DIR can go. Without a GPU
# the server falls back to CPU (--device auto) and says so in its log.
#
# Two GPU providers: CUDA (the provider libraries fetched by the install step below) and
# WebGPU, built into onnxruntime-node and running on Vulkan. For WebGPU the image has the
# Vulkan loader (libvulkan1), and NVIDIA_DRIVER_CAPABILITIES includes "graphics", which
# makes the NVIDIA container runtime mount the driver's Vulkan ICD; the CUDA base image
# sets only "compute,utility".

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04
ARG NODE_IMAGE=node:26-bookworm-slim

FROM ${NODE_IMAGE} AS node

# The runtime every stage below builds on: CUDA, Node 26 from the official image
# (its binary needs glibc >= 2.28; Ubuntu 22.04 has 2.35), the Vulkan loader.
FROM ${CUDA_IMAGE} AS base
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libvulkan1 \
 && rm -rf /var/lib/apt/lists/* \
 && node --version && npm --version
WORKDIR /app

# TypeScript → dist/. Dev dependencies (the compiler, the test clients) live in this stage only;
# no install script runs, since compiling needs no native module.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies, installed on the runtime's own OS so that a native module
# (better-sqlite3) built from source links against the same glibc. The compilers are
# needed only when no prebuilt binary can be downloaded (better-sqlite3 12 publishes none for
# Node 26), and stay in this stage. GCC 12, not Ubuntu 22.04's default 11: Node 26's V8 headers
# are C++20, and GCC 12 is the compiler this build was tested with (Debian 12's).
# The repository's .npmrc (which skips onnxruntime's CUDA download for CPU-only CI) is
# not copied; ONNXRUNTIME_NODE_INSTALL=cuda12 makes the install fetch the CUDA 12 provider.
FROM base AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make gcc-12 g++-12 \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN CC=gcc-12 CXX=g++-12 ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev --no-audit --no-fund \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && node -e "new (require('better-sqlite3'))(':memory:').close()" \
 && npm cache clean --force

# The serving image.
FROM base AS app
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin mmrec \
 && mkdir -p /models /data /states \
 && chown mmrec:mmrec /data /states
COPY --from=deps /app/node_modules ./node_modules
# "type": "module" makes dist/*.js ES modules.
COPY package.json ./
COPY --from=build /src/dist ./dist
COPY models/mm-rec-tiny /models/mm-rec-tiny
USER mmrec

ENV NODE_ENV=production \
    MMREC_HOST=0.0.0.0 \
    MMREC_PORT=8000 \
    MMREC_MODELS_DIR=/models \
    MMREC_DATA_DIR=/data \
    MMREC_DEVICE=auto \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
# /models is not a VOLUME: the baked-in model would be copied into an anonymous volume on every run.
VOLUME ["/data"]
EXPOSE 8000

# /health is 503 while models load and 200 once every model is ready; it never needs the API key.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.MMREC_PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The server itself is PID 1 (not npm), so SIGTERM reaches it: it stops accepting,
# lets in-flight requests finish within MMREC_SHUTDOWN_TIMEOUT seconds, and exits 0.
# Flags after the image name go to the server: docker run mmrec-server --max-n 4
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/server.js"]

# Fine-tuning jobs on the GPU: the model kit (kit/, run by the server as a child process)
# and a PyTorch built for CUDA 12.6, with onnx and numpy, in the system Python. The server
# finds it on PATH (python3 that imports torch, onnx and numpy). PyTorch's wheel carries
# its own CUDA libraries, about 3 GB: that is why this is a target of its own.
FROM app AS train
ARG TORCH_VERSION=2.8.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
 && pip3 install --no-cache-dir onnx numpy \
 && python3 -c "import torch, onnx, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
COPY kit/mmrec ./kit/mmrec
COPY kit/README.md ./kit/README.md
USER mmrec

# The default target: the serving image.
FROM app AS serve
