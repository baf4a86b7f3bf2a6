"""Support for the test suite and the benchmarks, shipped with the package so that both import it alike:
a generator of Dutch articles and rules (`corpus`, `rules`, `words`) and the real daemon as a subprocess
(`harness`). The daemon itself never imports it.
"""
