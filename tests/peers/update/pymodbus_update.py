"""Updates a Keel sensor with pymodbus alone, from docs/updates.md ("Sensor update profile"):
an independent implementation of the gateway side, checking that the profile is plain MODBUS.

usage: pymodbus_update.py PORT IMAGE VERSION
Exits 0 when the sensor reports VERSION after the update; prints the first failure otherwise.
"""
import hashlib
import sys
import time

from pymodbus.client import ModbusTcpClient
from pymodbus.file_message import FileRecord, WriteFileRecordRequest
from pymodbus.mei_message import ReadDeviceInformationRequest

BASE, U = 0x7F00, 1
port, image, want = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]


def ok(rr, what):
    if rr is None or rr.isError():
        print(f"FAIL {what}: {rr!r}", flush=True)
        sys.exit(1)
    return rr


client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
if not client.connect():
    print("cannot connect", flush=True)
    sys.exit(3)

digest = hashlib.sha256(image).digest()
begin = [1, len(image) >> 16, len(image) & 0xFFFF, 0, 0]
begin += [(digest[2 * i] << 8) | digest[2 * i + 1] for i in range(16)]
ok(client.write_registers(BASE, begin, slave=U), "FC16 begin")
regs = ok(client.read_holding_registers(BASE, 23, slave=U), "FC3 state").registers
if regs[0] != 1:
    print(f"FAIL state after begin: {regs[0]}", flush=True)
    sys.exit(1)
nxt = (regs[3] << 16) | regs[4]

data = image + (b"\xff" if len(image) % 2 else b"")
total = len(data) // 2
g = nxt
while g < total:
    file_no, record = 1 + g // 10000, g % 10000
    n = min(120, total - g, 10000 - record)
    rec = FileRecord(file_number=file_no, record_number=record,
                     record_data=data[2 * g:2 * (g + n)])
    ok(client.execute(WriteFileRecordRequest(records=[rec], unit=U)), f"FC21 record {g}")
    g += n
regs = ok(client.read_holding_registers(BASE + 3, 2, slave=U), "FC3 next").registers
if (regs[0] << 16) | regs[1] != total:
    print(f"FAIL next after the last record: {regs}", flush=True)
    sys.exit(1)
ok(client.write_register(BASE + 21, 0xC0DE, slave=U), "FC6 commit")

# The sensor restarts into the image (dropping the connection); ask its version until it
# answers, for at most 20 s.
deadline = time.time() + 20
while time.time() < deadline:
    client.close()
    if client.connect():
        rr = client.execute(ReadDeviceInformationRequest(read_code=4, object_id=2, unit=U))
        if rr is not None and not rr.isError() and 2 in rr.information:
            got = rr.information[2].decode()
            print(f"sensor runs {got}", flush=True)
            sys.exit(0 if got == want else 1)
    time.sleep(0.1)
print("FAIL the sensor did not come back", flush=True)
sys.exit(1)
