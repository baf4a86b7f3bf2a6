"""The benchmarks, and `kit`: what they share with the test suite (the article and rule generator, the
real daemon as a subprocess). Scripts run as `python benchmarks/NAME.py`; the tests import `benchmarks.kit`."""
