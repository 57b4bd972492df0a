"""What the benchmarks share, one job per module; a benchmark imports these and never another benchmark.

- ``results``: where results go (benchmarks/results/, its cache), saving a table as JSON and markdown with the
  command that made it, repository-relative paths, a progress line.
- ``queries``: held-out query sets, query protocols (which prompt a query is given), the caption-only baseline,
  each query's P@10 through Motive (no prompt) and the flow descriptor, and paired per-query differences with
  bootstrap intervals.
- ``features``: flow descriptors of a corpus at a model's geometry and the flow motion classifier, cached.
- ``runs``: the runs file of the fine-tuning studies, deadlines, spreads over seeds.
- ``curation``: the curation world (pool, its indexes, queries, fine-tuned arms and their evaluation) that
  bench_curation and bench_counterfactual both study.
"""
