"""Readers and writers of the files labctl produces and reads."""
