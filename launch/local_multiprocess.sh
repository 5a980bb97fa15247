#!/usr/bin/env bash
# CPU emulation of a multi-host run: N processes x D fake CPU devices on this
# machine, gloo collectives, the same command a pod runs.
#
#   launch/local_multiprocess.sh 2 2 --config=configs/l3_synthetic.py \
#       --workdir=/tmp/l3_mp --config.total_steps=20
set -euo pipefail
NUM_PROCESSES="${1:?usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS [avself.main flags...]}"
DEVICES="${2:?usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS [avself.main flags...]}"
shift 2
PORT="${AVSELF_COORDINATOR_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  JAX_PLATFORMS=cpu python3 -m avself.main "$@" \
    --coordinator_address="127.0.0.1:${PORT}" --num_processes="${NUM_PROCESSES}" \
    --process_id="${i}" --num_cpu_devices="${DEVICES}" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
exit "$status"
