"""A pymodbus client that checks a Keel slave serving sensor_map.json.

usage: pymodbus_client.py tcp PORT | rtu DEVICE
Exits 0 when every check passed; prints the first failure otherwise.
"""
import sys

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.diag_message import ReturnBusMessageCountRequest, ReturnQueryDataRequest
from pymodbus.file_message import FileRecord, ReadFileRecordRequest, WriteFileRecordRequest
from pymodbus.mei_message import ReadDeviceInformationRequest

if sys.argv[1] == "tcp":
    client = ModbusTcpClient("127.0.0.1", port=int(sys.argv[2]), timeout=3)
else:
    client = ModbusSerialClient(port=sys.argv[2], baudrate=19200, parity="N", stopbits=2,
                                bytesize=8, timeout=3)
if not client.connect():
    print("cannot connect", flush=True)
    sys.exit(3)


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}", flush=True)
        sys.exit(1)
    print(f"ok {what}", flush=True)


def ok(rr, what):
    if rr.isError():
        print(f"FAIL {what}: {rr!r}", flush=True)
        sys.exit(1)
    return rr


U = 1
# pymodbus 3.0.0 drops slave= for FC 22, 23 and 43 requests (they would go to unit 0, the
# RTU broadcast, which no slave answers); those requests take unit= instead.
check("FC3", ok(client.read_holding_registers(0, 4, slave=U), "FC3").registers,
      [215, 480, 1013, 65531])
check("FC4", ok(client.read_input_registers(0, 3, slave=U), "FC4").registers,
      [2150, 4800, 10130])
check("FC1", ok(client.read_coils(0, 3, slave=U), "FC1").bits[:3], [True, False, True])
check("FC2", ok(client.read_discrete_inputs(0, 3, slave=U), "FC2").bits[:3],
      [False, True, True])
ok(client.write_register(20, 0xBEEF, slave=U), "FC6")
ok(client.write_registers(21, [1, 2, 3], slave=U), "FC16")
check("FC6+FC16 read back", client.read_holding_registers(20, 4, slave=U).registers,
      [0xBEEF, 1, 2, 3])
ok(client.write_coil(5, True, slave=U), "FC5")
ok(client.write_coils(8, [True, True, False, True], slave=U), "FC15")
check("FC5+FC15 read back", client.read_coils(5, 7, slave=U).bits[:7],
      [True, False, False, True, True, False, True])
ok(client.mask_write_register(address=20, and_mask=0x00F2, or_mask=0x0025, unit=U), "FC22")
check("FC22 read back", client.read_holding_registers(20, 1, slave=U).registers,
      [(0xBEEF & 0x00F2) | (0x0025 & ~0x00F2 & 0xFFFF)])
rr = ok(client.readwrite_registers(read_address=30, read_count=2, write_address=31,
                                   write_registers=[77], unit=U), "FC23")
check("FC23", rr.registers, [0, 77])
rr = client.read_holding_registers(199, 2, slave=U)
check("exception on out-of-map read", getattr(rr, "exception_code", None), 2)
rr = ok(client.execute(ReadDeviceInformationRequest(read_code=1, object_id=0, unit=U)),
        "FC43/14")
check("FC43 vendor", rr.information.get(0), b"Keel")
check("FC43 product code", rr.information.get(1), b"KS-THP")
# FC 21 then FC 20: file records (the sensor firmware update path).
data = bytes([0x12, 0x34, 0xAB, 0xCD, 0x00, 0x01])
rec = FileRecord(reference_type=6, file_number=1, record_number=5, record_data=data)
ok(client.execute(WriteFileRecordRequest(records=[rec], unit=U)), "FC21")
rr = ok(client.execute(ReadFileRecordRequest(
    records=[FileRecord(reference_type=6, file_number=1, record_number=5, record_length=3)],
    unit=U)), "FC20")
check("FC20 after FC21", rr.records[0].record_data, data)
rr = client.execute(ReadFileRecordRequest(
    records=[FileRecord(reference_type=6, file_number=9, record_number=0, record_length=1)],
    unit=U))
check("FC20 on a missing file", getattr(rr, "exception_code", None), 2)
# FC 8: echo and a counter.
rr = ok(client.execute(ReturnQueryDataRequest(message=0xA537, unit=U)), "FC8/0")
check("FC8 query data", list(rr.message), [0xA537])
rr = ok(client.execute(ReturnBusMessageCountRequest(unit=U)), "FC8/11")
if not rr.message or rr.message[0] < 10:
    print(f"FAIL FC8 bus message count: {rr.message!r}", flush=True)
    sys.exit(1)
print("ok FC8 bus message count", rr.message[0], flush=True)
client.close()
print("all checks passed", flush=True)
