"""One reader/writer per raw file format labctl produces or consumes (standard library only)."""
