"""The eventlet WSGI server both services run on: the only package that knows eventlet.

- green.py: the monkey-patching the console scripts do first, and eventlet's pool of
  OS threads as the servers' offload;
- listener.py: the server's settings, its listening socket and the port it reports;
- protocol.py: one HTTP connection: eventlet's protocol with our additions, and how an
  app's answer is sent (a file body by sendfile());
- sendfile.py: the sendfile() loop and its readahead;
- connections.py: the bound on a worker's connections, which keeps answering when
  reached;
- workers.py: serving in one process or in forked workers under a supervisor, and the
  signals that reload or stop them.

eventlet says it is deprecated when first imported; it is imported here, quietly, so
that every module of the package can import it at its top.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet  # noqa: F401
