"""A pymodbus server for Keel's peer tests: the data Keel's master must read back.

holding[i] = 3*i (0..199), input[i] = 1000+i (0..99), coil[i] = i%2 (0..99),
discrete[i] = (i%3 == 0) (0..99). Addresses are PDU addresses (zero_mode).
usage: pymodbus_server.py tcp PORT | rtu DEVICE
"""
import logging
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.server import StartSerialServer, StartTcpServer
from pymodbus.transaction import ModbusRtuFramer

logging.basicConfig(level=logging.WARNING)

store = ModbusSlaveContext(
    di=ModbusSequentialDataBlock(0, [i % 3 == 0 for i in range(100)]),
    co=ModbusSequentialDataBlock(0, [i % 2 for i in range(100)]),
    hr=ModbusSequentialDataBlock(0, [3 * i for i in range(200)]),
    ir=ModbusSequentialDataBlock(0, [1000 + i for i in range(100)]),
    zero_mode=True,
)
context = ModbusServerContext(slaves=store, single=True)
identity = ModbusDeviceIdentification(info_name={"VendorName": "pymodbus",
                                                 "ProductCode": "PM",
                                                 "MajorMinorRevision": "3.0"})
print("ready", flush=True)
if sys.argv[1] == "tcp":
    StartTcpServer(context=context, identity=identity, address=("127.0.0.1", int(sys.argv[2])))
else:
    StartSerialServer(context=context, identity=identity, framer=ModbusRtuFramer,
                      port=sys.argv[2], baudrate=19200, parity="N", stopbits=2, bytesize=8,
                      timeout=0.05)
