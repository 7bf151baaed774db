#!/usr/bin/env python3
"""A receiver for the HTTP sink's tests: answers each POST with the next status of
`--statuses` (a comma-separated list; the last one repeats), after `--delay` seconds,
and appends every request
it got as one JSON line (status answered, headers, body) to `--log`. Prints its port on
stdout once it listens on 127.0.0.1."""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--statuses", default="200")
    parser.add_argument("--log", required=True)
    parser.add_argument("--retry-after", default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    statuses = [int(s) for s in args.statuses.split(",")]
    seen = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if args.delay:
                time.sleep(args.delay)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8", "replace")
            i = seen["n"]
            seen["n"] += 1
            status = statuses[min(i, len(statuses) - 1)]
            with open(args.log, "a") as log:
                log.write(json.dumps({
                    "status": status,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }) + "\n")
            reply = b"accepted" if status < 300 else b"refused: test receiver says no"
            self.send_response(status)
            if status in (429, 503) and args.retry_after is not None:
                self.send_header("Retry-After", args.retry_after)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
