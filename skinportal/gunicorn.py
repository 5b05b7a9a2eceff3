"""gunicorn's settings for the portal: ``gunicorn -c python:skinportal.gunicorn skinportal.wsgi``.

One worker process per core, each with threads (gthread): a request is mostly Python (one
core's worth at a time per process, the GIL), and the threads keep a core busy while another
request waits on PostgreSQL, Redis, the object store or a long poll (``Prefer: wait``,
diagnosis/polling.py), which sleeps between checks and holds its thread for up to
``SKINPORTAL_POLL_MAX_WAIT_SECONDS``. So threads x workers bound the clients that can long-poll
at once; measured on 2 cores (docs/benchmarks.md): 2 workers x 8 threads served 16 clients
long-polling. Every value can be overridden from the environment or the command line.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# WEB_CONCURRENCY is gunicorn's own variable for the number of worker processes.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 8))
worker_class = "gthread"
# Above the longest long poll (20 s by default) and the slowest upload the limits admit (docs/benchmarks.md).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# A client polling for its result keeps its connection between polls.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
