"""The batch scanner: archive walk, the rerun index, Ray orchestration, verdict rows and their alarms,
the Parquet sink (parts, manifests, quarantine, compaction), the report and the web app. The command
line that drives it is the top floor, ``dfscan.cli``."""
