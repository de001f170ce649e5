"""Orchestration of the lab: provision, teardown and status, over ontap/* and the hosts phase
(`hosts_phase`: the playbooks on the GPU hosts), recorded in the ledger."""
