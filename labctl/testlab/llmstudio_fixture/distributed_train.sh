#!/bin/bash
# Same contract as LLM Studio's: distributed_train.sh N -Y cfg.yaml
N=$1
shift
exec python train.py "$@"
