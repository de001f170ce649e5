"""Readers and writers of the files labctl produces and consumes (stdlib only where the host agent needs them)."""
