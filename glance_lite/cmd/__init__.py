"""Console-script entry points. Each is thin: serve.py does what both servers share."""
