"""A metadata client, run as its own process: `python -m bench.metaclient GATE_FIFO`.

It imports what it needs, then blocks reading its job (JSON) from GATE_FIFO (see
bench/gate.py), runs it over one keep-alive connection with http.client, and prints
{"start", "end", "latencies", "errors", "statuses"} as JSON; times are time.monotonic(),
which is one clock for every process on the machine.

Jobs: {"op": "create" | "head" | "list", "url": base URL, "count": N, "path": ...}
- create: POST {url}/v1/images without data, N times (names from "prefix")
- head:   HEAD {url}{path}, N times
- list:   GET {url}{path}, N times, the body read whole
"""

import http.client
import json
import sys
import time
from urllib.parse import urlsplit

EXPECTED = {"create": 201, "head": 200, "list": 200}


def create_headers(name: str) -> dict[str, str]:
    return {
        "x-image-meta-name": name,
        "x-image-meta-disk-format": "raw",
        "x-image-meta-container-format": "bare",
        "x-image-meta-is-public": "true",
    }


def run(job: dict) -> dict:
    parts = urlsplit(job["url"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    op = job["op"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    start = time.monotonic()
    for i in range(job["count"]):
        began = time.monotonic()
        try:
            status = _call(conn, op, job, i)
        except (OSError, http.client.HTTPException):
            conn.close()  # reconnects on the next request
            status = 0
        latencies.append(time.monotonic() - began)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        errors += status != EXPECTED[op]
    end = time.monotonic()
    conn.close()
    return {
        "start": start,
        "end": end,
        "latencies": latencies,
        "errors": errors,
        "statuses": statuses,
    }


def _call(conn: http.client.HTTPConnection, op: str, job: dict, i: int) -> int:
    if op == "create":
        conn.request("POST", "/v1/images", headers=create_headers(f"{job['prefix']}-{i}"))
    elif op == "head":
        conn.request("HEAD", job["path"])
    else:
        conn.request("GET", job["path"])
    resp = conn.getresponse()
    resp.read()
    return resp.status


def main(argv: list[str]) -> None:
    with open(argv[1]) as gate:
        job = json.loads(gate.read())
    json.dump(run(job), sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
