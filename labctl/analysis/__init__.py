"""Run-bundle analysis: the raw files' series (through labctl.formats), the 1 s timeline (Parquet) and
summary metrics. Pure functions on files; nothing here prints, talks to hosts or imports the CLI."""
