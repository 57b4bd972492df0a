"""Evaluation: retrieval metrics, the flow-only motion classifier and VBench-style motion proxies.

Used by the benchmarks and tests to judge the engine; the engine never imports it.
"""
