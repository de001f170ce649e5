"""Reports built only from a run bundle: report.html (self-contained) and side-by-side comparisons."""
