#!/usr/bin/env bash
# Cloud TPU VM or pod slice: create it, install avself on every worker, run.
#
#   TPU_NAME=avself-v4-32 ZONE=us-central2-b ACCELERATOR=v4-32 \
#   REPO=https://github.com/you/avself.git \
#   launch/tpu_vm.sh --config=configs/l3_flickr.py \
#       --config.data.path=gs://bucket/flickr/records --workdir=gs://bucket/l3_flickr
#
# Every worker runs the same command; jax.distributed.initialize() discovers
# the pod by itself. Set SKIP_CREATE=1 to reuse an existing VM.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${REPO:?set REPO (git URL of avself)}"
ACCELERATOR="${ACCELERATOR:-v4-8}"
VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
if [[ -z "${SKIP_CREATE:-}" ]]; then
  gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
    --accelerator-type="$ACCELERATOR" --version="$VERSION" ${PREEMPTIBLE:+--preemptible}
fi
ARGS=$(printf '%q ' "$@")
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  [ -d avself ] || git clone $REPO avself
  cd avself && git pull --ff-only
  python3 -m venv ~/venv && . ~/venv/bin/activate
  pip install -q -e . 'jax[tpu]'
  python3 -m avself.main --distributed=on $ARGS
"
