"""GPU hosts: ansible-runner wrapper (`runner`: events → per-host results, live progress) and paramiko helpers
(`ssh`)."""
