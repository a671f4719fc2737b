#!/usr/bin/env python3
"""Reads coils with pymodbus's client: prints one 0/1 per coil, space separated.

usage: modbus_read.py PORT UNIT FIRST COUNT
"""

import sys

from pymodbus.client import ModbusTcpClient


def main():
    port, unit, first, count = (int(a) for a in sys.argv[1:5])
    client = ModbusTcpClient("127.0.0.1", port=port)
    if not client.connect():
        sys.exit("cannot connect")
    try:
        rr = client.read_coils(first, count=count, device_id=unit)
    except TypeError:  # pymodbus < 3.10 calls the unit id "slave"
        rr = client.read_coils(first, count=count, slave=unit)
    client.close()
    if rr.isError():
        sys.exit("read failed: %s" % rr)
    print(" ".join("1" if b else "0" for b in rr.bits[:count]))


if __name__ == "__main__":
    main()
