"""Benchmarks that measure and save the tables in benchmarks/results/ (copied into docs/results.md).

Run each from the repository root as ``python -m benchmarks.<name>`` (``--help`` lists its options). What
several share lives in ``benchmarks.common``; no benchmark imports another. ``independent_motions`` is also a
data source: a second renderer of the ten motions that benchmarks and tests draw queries from.
"""
