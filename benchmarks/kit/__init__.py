"""Support shared by the benchmarks and the test suite: a generator of Dutch articles and rules (`corpus`,
`rules`, `words`), the real daemon as a subprocess (`harness`) and fresh PostgreSQL databases (`postgres`).
It lives beside the benchmarks, not in the `monitor` package: the daemon never imports it and it is not
installed. The tests import it as `benchmarks.kit` (the project's root is on their path), the benchmark
scripts too (`benchmarks/source.py` puts the root on the path, after a BENCH_SOURCE tree if one is given).
"""
