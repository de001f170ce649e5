"""The one thing pyproject.toml cannot say: labctl's optional C scanner (labctl/analysis/_scan.c).

Without a C compiler the install still succeeds and the report uses its pure-Python parsers.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("labctl.analysis._scan", ["labctl/analysis/_scan.c"], optional=True,
                             extra_compile_args=["-O2", "-ffp-contract=off"])])
