#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript).
# Prints the GPUs this executor may use as Spark's ResourceInformation JSON:
#   {"name": "gpu", "addresses": ["0", "1"]}
# Honours CUDA_VISIBLE_DEVICES when the cluster manager already narrowed the set.
set -euo pipefail
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  IFS=',' read -ra ids <<< "${CUDA_VISIBLE_DEVICES}"
elif command -v nvidia-smi >/dev/null 2>&1; then
  mapfile -t ids < <(nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' ')
else
  ids=()
fi
out=""
for id in "${ids[@]}"; do
  [[ -z "$id" ]] && continue
  out+="${out:+,}\"${id}\""
done
echo "{\"name\": \"gpu\", \"addresses\": [${out}]}"
