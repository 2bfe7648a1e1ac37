"""What the benchmark scripts of bench/ share to set up and report a run, one concern a module.

- ``processes``: processes started in their own session and ended with their whole group; their logs;
- ``cpu``: CPU time from /proc (of processes, of sessions, of the machine), and waiting for a quiet machine;
- ``gateway``: the gateway under test: its environment, ``mmsgate serve``/``api``/``worker`` started and
  waited for, its admin CLI, fresh PostgreSQL databases, provisioned accounts;
- ``bodies``: what the load sends: ``sendmms`` bodies and requests, photo-like JPEGs and an origin serving one;
- ``load``: wrk and the raw load generator (bench/pipeline_load.py), with what they measured;
- ``results``: figures (percentiles), table rows, verdicts, and the dated run appended to docs/benchmarks.md;
- ``script``: a script's frame: SIGTERM as an interrupt, the event loop, the Node test peers.

The scripts run as files (``.venv/bin/python bench/NAME.py``), which puts bench/ first on ``sys.path``: that
is how they import this package. It uses the standard library only (psycopg and Pillow when asked for).
"""
