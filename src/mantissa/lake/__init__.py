"""The data lake: partitioned Parquet under one root, behind a :class:`Storage`.

Layout (the module reference's scheme)::

    <root>/logs/<source>/year=YYYY/month=MM/day=DD/hour=HH/<batch-id>.parquet
    <root>/traces/year=.../   <root>/metrics/year=.../
    <root>/playbooks/<playbook-id>/<version>/
    <root>/deadletter/<source>/<YYYY-MM-DD>/<batch-id>.jsonl
"""
