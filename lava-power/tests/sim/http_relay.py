#!/usr/bin/env python3
"""HTTP relay devices on 127.0.0.1 and a free port; prints "READY <port>" once it listens.

usage: http_relay.py STATE_FILE [RELAYS]

RELAYS (default 4) relays, all off, kept in STATE_FILE (JSON {"1": "on", ...}, rewritten on each change)
and each switch appended to STATE_FILE + ".log" as "<api> <relay> <on|off>". Three APIs on the same
relays:

  Tasmota   GET /cm?cmnd=Power<N>%20<On|Off|Toggle|1|0>  → {"POWER<N>":"ON"}
            GET /cm?cmnd=Power<N>                        → {"POWER<N>":"OFF"}
            unknown command                              → 200 {"Command":"Unknown"} (as Tasmota does)
  Shelly    GET /relay/<N>?turn=<on|off>   (N from 0)    → {"ison":true,"has_timer":false,...}
            GET /relay/<N>                               → the same; bad N → 404
  generic   POST /api/relay/<N>  body {"state":"on"}     → 204, Basic auth admin:secret else 401
            GET  /api/relay/<N>                          → text "on" / "off" (auth too)
  faults    GET /garbage → 200 with a non-JSON body;  GET /error → 500 "relay fault"
HEAD and unknown paths → 404. Nothing switches on a request that fails.
"""

import base64
import json
import os
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {}
PATH = ""
AUTH = "Basic " + base64.b64encode(b"admin:secret").decode()


def save():
    tmp = PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATE, f)
    os.replace(tmp, PATH)


def switch(api, n, on):
    STATE[str(n)] = "on" if on else "off"
    save()
    with open(PATH + ".log", "a") as f:
        f.write("%s %d %s\n" % (api, n, STATE[str(n)]))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        m = re.fullmatch(r"/relay/(\d+)", url.path)
        if url.path == "/cm":
            cmnd = query.get("cmnd", [""])[0]
            m = re.fullmatch(r"(?i)power(\d*)(?: (\w+))?", cmnd)
            if not m:
                return self.reply(200, '{"Command":"Unknown"}')
            n = int(m.group(1) or "1")
            if str(n) not in STATE:
                return self.reply(200, '{"Command":"Unknown"}')
            arg = (m.group(2) or "").lower()
            if arg in ("on", "1"):
                switch("tasmota", n, True)
            elif arg in ("off", "0"):
                switch("tasmota", n, False)
            elif arg == "toggle":
                switch("tasmota", n, STATE[str(n)] != "on")
            elif arg:
                return self.reply(200, '{"Command":"Error"}')
            return self.reply(200, json.dumps({"POWER%d" % n: STATE[str(n)].upper()}))
        if m:
            n = int(m.group(1)) + 1
            if str(n) not in STATE:
                return self.reply(404, "Not Found", "text/plain")
            turn = query.get("turn", [""])[0]
            if turn in ("on", "off"):
                switch("shelly", n, turn == "on")
            elif turn:
                return self.reply(400, "Bad turn", "text/plain")
            return self.reply(200, json.dumps({
                "ison": STATE[str(n)] == "on", "has_timer": False, "timer_started": 0,
                "timer_duration": 0, "timer_remaining": 0, "source": "http"}))
        m = re.fullmatch(r"/api/relay/(\d+)", url.path)
        if m:
            if self.headers.get("Authorization") != AUTH:
                return self.reply(401, "Unauthorized", "text/plain")
            n = m.group(1)
            if n not in STATE:
                return self.reply(404, "no such relay", "text/plain")
            return self.reply(200, STATE[n] + "\n", "text/plain")
        if url.path == "/garbage":
            return self.reply(200, "<html>hello</html>", "text/html")
        if url.path == "/error":
            return self.reply(500, "relay fault", "text/plain")
        return self.reply(404, "Not Found", "text/plain")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        m = re.fullmatch(r"/api/relay/(\d+)", url.path)
        if not m:
            return self.reply(404, "Not Found", "text/plain")
        if self.headers.get("Authorization") != AUTH:
            return self.reply(401, "Unauthorized", "text/plain")
        n = m.group(1)
        if n not in STATE:
            return self.reply(404, "no such relay", "text/plain")
        if self.headers.get("Content-Type") != "application/json":
            return self.reply(415, "want JSON", "text/plain")
        try:
            state = json.loads(body)["state"]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, "bad body", "text/plain")
        if state not in ("on", "off"):
            return self.reply(400, "bad state", "text/plain")
        switch("generic", int(n), state == "on")
        self.send_response(204)
        self.end_headers()


def main():
    global PATH
    PATH = sys.argv[1]
    relays = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    STATE.update({str(n): "off" for n in range(1, relays + 1)})
    save()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
