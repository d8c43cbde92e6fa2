#!/usr/bin/env bash
# Writes requirements.lock: the cluster image's whole resolved Python environment, every
# package pinned with the hashes of its files, resolved from requirements.txt for the
# image's Python (3.11, Linux x86_64). Run it after changing requirements.txt:
#   bash images/cluster/lock.sh        (needs uv: pip install uv==0.13.8)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
uv pip compile requirements.txt --output-file requirements.lock --generate-hashes \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
  --annotation-style split --custom-compile-command 'bash images/cluster/lock.sh'
