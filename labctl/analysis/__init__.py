"""Run-bundle analysis: streaming parsers, the 1 s timeline (Parquet) and summary metrics.

Pure functions on files and iterators; nothing here prints, talks to hosts or imports the CLI.
"""

import os

# The analysis multiplies no matrices, but numpy's OpenBLAS starts a thread per core at import, which spins
# for a while (≈ 0.1 s of CPU on 2 cores, taken from the parsers). One will do, unless the user asks for more.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
