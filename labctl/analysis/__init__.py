"""Run-bundle analysis: streaming parsers, the 1 s timeline (Parquet) and summary metrics.

Pure functions on files and iterators; nothing here prints, talks to hosts or imports the CLI.
"""
