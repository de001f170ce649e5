"""Validated settings: the lab (from the Ansible inventory), its secrets, and experiments."""
