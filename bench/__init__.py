"""glance-lite's benchmark: real servers, separate client processes, ceilings in the same run.

`python -m bench.run` (or `make bench`, `make bench-smoke`) starts glance-registry and
glance-api from the shipped configs, measures transfers and metadata calls against the
physical ceilings of the machine (md5 in Python, nginx, a no-op chain on the same WSGI
server stack), and writes a JSON report, a Markdown table and PNG plots to bench/results/.
It imports nothing from tests/.
"""
