"""The simulated lab's GPU hosts: real sshd per host (own mount namespace as root), shims for what this
machine cannot have (nvidia-smi, the kernel NFS client, nfsiostat), and the LLM Studio fixture repository.

Imports nothing from labctl's client side (`labctl.ontap`, `labctl.config`, `labctl.lab`, `labctl.hosts`).
"""
