"""Experiment runs: render, host agent and emulator, run/attach/collect, manifest."""
