#!/usr/bin/env python3
"""A switched PDU's outlet tables for net-snmp's snmpd, as a `pass_persist` program.

snmpd.conf:  pass_persist .1.3.6.1.4.1 /usr/bin/python3 snmp_outlets.py STATE_FILE [OUTLETS]

One PDU with OUTLETS (default 24) outlets whose on/off state lives in STATE_FILE (JSON,
{"1": "on", ...}, rewritten on every change, so a test can read what the PDU did). The same outlets are
served through each vendor MIB the lava-power snmp presets use, with that MIB's values:

  apc       PowerNet-MIB sPDUOutletCtl            .318.1.1.4.4.2.1.3.N      rw 1 on 2 off 3 reboot
  apc-rpdu  rPDUOutletControlOutletCommand        .318.1.1.12.3.3.1.1.4.N   rw 1 on 2 off 3 reboot
            rPDUOutletStatusOutletState           .318.1.1.12.3.5.1.1.4.N   ro 1 on 2 off
  raritan   PDU2-MIB switchingOperation           .13742.6.4.1.2.1.2.1.N    rw 0 off 1 on 2 cycle
            outletSwitchingState                  .13742.6.4.1.2.1.3.1.N    ro 7 on 8 off
  eaton     EATON-EPDU-MIB outletControlStatus    .534.6.6.7.6.6.1.2.0.N    ro 0 off 1 on
            outletControlOffCmd / OnCmd           .534.6.6.7.6.6.1.{3,4}.0.N rw 0 = now, -1 = cancel
  sentry    Sentry3-MIB outletStatus              .1718.3.2.3.1.5.1.1.N     ro 0 off 1 on
            outletControlAction                   .1718.3.2.3.1.11.1.1.N    rw 1 on 2 off 3 reboot

Every SET is also appended to STATE_FILE + ".log" as "OID VALUE".
"""

import json
import os
import sys

ENT = (1, 3, 6, 1, 4, 1)


def parse(oid):
    return tuple(int(x) for x in oid.strip().strip(".").split(".") if x)


def fmt(oid):
    return "." + ".".join(str(x) for x in oid)


class Pdu:
    def __init__(self, path, count):
        self.path = path
        self.count = count
        self.state = {str(n): "off" for n in range(1, count + 1)}
        if os.path.exists(path):
            with open(path) as f:
                self.state.update(json.load(f))
        self.save()

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.path)

    def on(self, n):
        return self.state[str(n)] == "on"

    def switch(self, n, state):
        self.state[str(n)] = state
        self.save()

    # column prefix -> (reader, writer); writer returns an error name or None
    def columns(self):
        def enum(on_v, off_v):
            return lambda n: on_v if self.on(n) else off_v

        def act(values):
            def write(n, v):
                if v not in values:
                    return "wrong-value"
                if values[v] is not None:
                    self.switch(n, values[v])
                return None
            return write

        return {
            ENT + (318, 1, 1, 4, 4, 2, 1, 3): (enum(1, 2), act({1: "on", 2: "off", 3: "on"})),
            ENT + (318, 1, 1, 12, 3, 3, 1, 1, 4): (enum(1, 2), act({1: "on", 2: "off", 3: "on"})),
            ENT + (318, 1, 1, 12, 3, 5, 1, 1, 4): (enum(1, 2), None),
            ENT + (13742, 6, 4, 1, 2, 1, 2, 1): (lambda n: 0, act({0: "off", 1: "on", 2: "on"})),
            ENT + (13742, 6, 4, 1, 2, 1, 3, 1): (enum(7, 8), None),
            ENT + (534, 6, 6, 7, 6, 6, 1, 2, 0): (enum(1, 0), None),
            ENT + (534, 6, 6, 7, 6, 6, 1, 3, 0): (lambda n: -1, act({0: "off", -1: None})),
            ENT + (534, 6, 6, 7, 6, 6, 1, 4, 0): (lambda n: -1, act({0: "on", -1: None})),
            ENT + (1718, 3, 2, 3, 1, 5, 1, 1): (enum(1, 0), None),
            ENT + (1718, 3, 2, 3, 1, 11, 1, 1): (lambda n: 0, act({0: None, 1: "on", 2: "off", 3: "on"})),
        }

    def lookup(self, oid):
        col, n = oid[:-1], oid[-1] if oid else 0
        entry = self.columns().get(col)
        if entry is None or not 1 <= n <= self.count:
            return None
        return entry

    def all_oids(self):
        return sorted(col + (n,) for col in self.columns() for n in range(1, self.count + 1))


def main():
    pdu = Pdu(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 24)
    log = open(sys.argv[1] + ".log", "a")
    out = sys.stdout
    trace = os.environ.get("SNMP_SIM_TRACE")
    for line in sys.stdin:
        cmd = line.strip()
        if trace:
            with open(trace, "a") as t:
                t.write(line)
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd == "get":
            oid = parse(sys.stdin.readline())
            entry = pdu.lookup(oid)
            if entry is None:
                out.write("NONE\n")
            else:
                out.write("%s\ninteger\n%d\n" % (fmt(oid), entry[0](oid[-1])))
        elif cmd == "getnext":
            oid = parse(sys.stdin.readline())
            nxt = next((o for o in pdu.all_oids() if o > oid), None)
            if nxt is None:
                out.write("NONE\n")
            else:
                out.write("%s\ninteger\n%d\n" % (fmt(nxt), pdu.lookup(nxt)[0](nxt[-1])))
        elif cmd == "set":
            oid = parse(sys.stdin.readline())
            kind, _, value = sys.stdin.readline().strip().partition(" ")
            entry = pdu.lookup(oid)
            if entry is None:
                out.write("not-writable\n")
            elif entry[1] is None:
                out.write("not-writable\n")
            elif kind != "integer":
                out.write("wrong-type\n")
            else:
                err = entry[1](oid[-1], int(value))
                log.write("%s %s\n" % (fmt(oid), value))
                log.flush()
                out.write((err or "DONE") + "\n")
        elif cmd == "":
            continue  # snmpd sends a blank line after a set's value
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    main()
