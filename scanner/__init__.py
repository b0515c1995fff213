"""The batch scanner: archive walk, Ray orchestration, Parquet sink, and the `dfscan` CLI."""
