#!/usr/bin/env python3
"""A Modbus/TCP relay board: pymodbus's own server with a block of COILS coils (addresses 0..COILS-1,
all off), any unit id, on 127.0.0.1 and a free port. Prints "READY <port>" once it listens.

usage: modbus_server.py COILS
"""

import asyncio
import logging
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

try:
    from pymodbus.datastore import ModbusDeviceContext as DeviceContext
except ImportError:  # pymodbus < 3.10
    from pymodbus.datastore import ModbusSlaveContext as DeviceContext


async def main():
    logging.disable(logging.WARNING)
    coils = int(sys.argv[1])
    # pymodbus maps protocol address A to block index A+1; a block starting at 1 holds 0..COILS-1.
    device = DeviceContext(co=ModbusSequentialDataBlock(1, [False] * coils))
    context = ModbusServerContext(devices=device, single=True)
    server = ModbusTcpServer(context, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
