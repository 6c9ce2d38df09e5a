#!/usr/bin/env bash
# The model kit's tests. They need Debian's /usr/bin/python3 (PyTorch, onnx, pytest),
# Node.js and the repository's node_modules (onnxruntime-node, tsx); a missing piece
# fails the run, it never skips tests. Takes a minute or two on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
