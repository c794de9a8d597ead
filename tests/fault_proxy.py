"""A fault-injecting HTTP proxy for the sink tests: it stands between the
shipper and LocalStack and, for a share of the calls, answers
ThrottlingException, answers HTTP 500, or hangs up without an answer
(a timeout as the client sees it) — in each case WITHOUT forwarding, so the
call had no effect. It also turns successes into partial failures the way
AWS reports them, and honestly: the events it reports as failed are NOT
forwarded to LocalStack.

- Firehose PutRecordBatch: a share of the records get an ErrorCode
  (ServiceUnavailableException or InternalFailure), FailedPutCount set;
  a record holding an event with `"poison":true` fails every time.
- CloudWatch Logs PutLogEvents: the first events of a batch are reported in
  `rejectedLogEventsInfo.tooOldLogEventEndIndex`, the last ones in
  `tooNewLogEventStartIndex`.

Counts of what it did are in `proxy.stats`."""

import base64
import collections
import http.client
import http.server
import json
import random
import threading
import time
import urllib.parse


class FaultProxy:
    def __init__(self, upstream: str, seed: int = 7, throttle=0.1, error=0.08, hangup=0.05,
                 partial=0.3, record_failure=0.3):
        self.upstream = urllib.parse.urlparse(upstream)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.p = {"throttle": throttle, "error": error, "hangup": hangup, "partial": partial}
        self.record_failure = record_failure
        self.stats = collections.Counter()
        self.gzip_bodies = collections.Counter()
        self.calls = collections.Counter()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                proxy.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def roll(self, op: str) -> str:
        # The first calls of each operation get each fault once, so every
        # run exercises all of them; then faults are drawn at random.
        with self.lock:
            self.calls[op] += 1
            n = self.calls[op]
            x = self.rng.random()
        forced = {1: "throttle", 2: "error", 3: "hangup", 4: "partial"}.get(n)
        if forced:
            return forced
        acc = 0.0
        for fault in ("throttle", "error", "hangup"):
            acc += self.p[fault]
            if x < acc:
                return fault
        return "forward"

    def chance(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    def forward(self, req, body: bytes):
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Content-Length"] = str(len(body))
        conn.request("POST", req.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = (resp.status, [(k, v) for k, v in resp.getheaders()
                             if k.lower() not in ("content-length", "transfer-encoding", "connection")], data)
        conn.close()
        return out

    def reply(self, req, status, headers, body: bytes):
        req.send_response(status)
        for k, v in headers:
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def handle(self, req):
        body = req.rfile.read(int(req.headers.get("Content-Length", 0)))
        target = req.headers.get("X-Amz-Target", "")
        op = target.split(".")[-1] if target else "query"
        if req.headers.get("Content-Encoding") == "gzip":
            self.gzip_bodies[op] += 1
        fault = self.roll(op)
        self.stats[f"{op}:{fault}"] += 1
        json_api = bool(target)
        if fault == "throttle":
            if json_api:
                self.reply(req, 400, [("Content-Type", "application/x-amz-json-1.1"),
                                      ("x-amzn-ErrorType", "ThrottlingException")],
                           json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode())
            else:
                self.reply(req, 400, [("Content-Type", "text/xml")],
                           b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                           b"<Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>")
            return
        if fault == "error":
            self.reply(req, 500, [("Content-Type", "application/x-amz-json-1.1")],
                       json.dumps({"__type": "InternalFailure", "message": "injected"}).encode())
            return
        if fault == "hangup":
            time.sleep(0.2)
            req.close_connection = True
            try:
                import socket
                req.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        partial = fault == "partial" or self.chance(self.p["partial"])
        if op == "PutRecordBatch" and (partial or self.poisoned(body)):
            return self.partial_firehose(req, body)
        if op == "PutLogEvents" and partial:
            return self.partial_logs(req, body)
        status, headers, data = self.forward(req, body)
        self.reply(req, status, headers, data)

    @staticmethod
    def is_poison(record) -> bool:
        data = base64.b64decode(record["Data"])
        return b'"poison":true' in data or b'"poison": true' in data

    def poisoned(self, body) -> bool:
        try:
            return any(self.is_poison(r) for r in json.loads(body)["Records"])
        except (ValueError, KeyError):
            return False

    def partial_firehose(self, req, body):
        doc = json.loads(body)
        records = doc["Records"]
        # A record holding a `"poison":true` event fails every time.
        poison = [self.is_poison(r) for r in records]
        failed = [p or self.chance(self.record_failure) for p in poison]
        keep = [r for r, f in zip(records, failed) if not f]
        ids = []
        if keep:
            status, headers, data = self.forward(req, json.dumps({**doc, "Records": keep}).encode())
            if status != 200:
                return self.reply(req, status, headers, data)
            ids = [r.get("RecordId", "x") for r in json.loads(data)["RequestResponses"]]
        responses, it = [], iter(ids)
        for f, p in zip(failed, poison):
            if f:
                code = "InternalFailure" if p or self.chance(0.5) else "ServiceUnavailableException"
                responses.append({"ErrorCode": code, "ErrorMessage": "injected"})
                self.stats[f"PutRecordBatch:record_{code}"] += 1
            else:
                responses.append({"RecordId": next(it)})
        self.stats["PutRecordBatch:partial"] += 1
        out = {"FailedPutCount": sum(failed), "Encrypted": False, "RequestResponses": responses}
        self.reply(req, 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(out).encode())

    def partial_logs(self, req, body):
        doc = json.loads(body)
        events = doc["logEvents"]
        n = len(events)
        with self.lock:
            old = self.rng.randint(min(1, n), min(3, n))
            new = self.rng.randint(0, min(3, n - old))
        keep = events[old:n - new]
        info = {}
        if old:
            info["tooOldLogEventEndIndex"] = old
        if new:
            info["tooNewLogEventStartIndex"] = n - new
        if keep:
            status, headers, data = self.forward(req, json.dumps({**doc, "logEvents": keep}).encode())
            if status != 200:
                return self.reply(req, status, headers, data)
        self.stats["PutLogEvents:partial"] += 1
        self.stats["PutLogEvents:rejected_events"] += old + new
        out = {"nextSequenceToken": "0", "rejectedLogEventsInfo": info} if info else {}
        self.reply(req, 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(out).encode())
