#!/usr/bin/env python3
"""format_doc.py -- write kappa log segments from docs/format.md alone (an independent
implementation of the byte layout, CRC-32C and audit chain included) and check that `kappa
check` and `kappa verify` agree: a sound log passes with the right counts, a flipped byte in
a sealed segment is corruption named by segment and offset (exit 3), a cut tail is reported
as torn (exit 0), a chain value that does not follow is a break, and bad usage exits 2.
Prints TAP."""
import hashlib, os, shutil, struct, subprocess, sys, tempfile

KAPPA = os.environ.get("KAPPA_BIN", "build/kappa")
POLY = 0x82F63B78
TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def event(stream, version, etype, data, subject=b"", metadata=b""):
    body = struct.pack("<QHHHHII", version, len(stream), len(etype), len(subject), 0,
                       len(metadata), len(data)) + stream + etype + subject + metadata + data
    return struct.pack("<I", len(body)) + body


GENESIS = bytes(range(32))


def batch(first, events, prev, ts=1700000000000, durable_below=0):
    """The batch's bytes and its chain value."""
    payload = b"".join(events)
    length = 80 + len(payload)
    fields = struct.pack("<IHHQIIqQ", length, 1, 1, first, len(events), 0, ts, durable_below)
    chain = hashlib.blake2b(prev + fields + payload, digest_size=32).digest()
    rest = fields + chain + payload
    return struct.pack("<II", 0x424C504B, crc32c(rest)) + rest, chain


def write_log(d, segments):
    """segments: list of lists of batch event counts; returns {first: [offsets]}."""
    os.makedirs(d, exist_ok=True)
    g = struct.pack("<I", 0x4E47504B) + GENESIS
    with open(os.path.join(d, "genesis"), "wb") as f:
        f.write(g + struct.pack("<I", crc32c(g)))
    pos, layout, prev = 0, {}, GENESIS
    for seg in segments:
        first, data, offs = pos, b"", []
        for n in seg:
            evs = [event(b"s-%d" % (pos + i), 0, b"T", b'{"i":%d}' % (pos + i)) for i in range(n)]
            offs.append(len(data))
            b, prev = batch(pos, evs, prev, durable_below=pos)
            data += b
            pos += n
        with open(os.path.join(d, "%020d.log" % first), "wb") as f:
            f.write(data)
        layout[first] = offs
    return layout


def kappa(*args):
    p = subprocess.run([KAPPA, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


results = []


def check(ok, what, detail=""):
    results.append(ok)
    print("%sok %d - %s" % ("" if ok else "not ", len(results), what))
    if not ok and detail:
        print("# " + detail.replace("\n", "\n# "))


tmp = tempfile.mkdtemp(prefix="kappa-format-", dir=os.environ.get("TEST_TMPDIR"))
try:
    d = os.path.join(tmp, "data", "log")
    layout = write_log(d, [[1, 3, 2], [4, 1]])
    rc, out = kappa("check", os.path.join(tmp, "data"))
    check(rc == 0 and "ok: 11 events in 5 batches" in out, "a log written from docs/format.md passes kappa check", out)
    rc, out = kappa("verify", os.path.join(tmp, "data"))
    check(rc == 0 and "ok: 5 batches, 11 events" in out, "its audit chain, computed from docs/format.md, verifies", out)
    with open(os.path.join(tmp, "digest.json"), "w") as f:
        chain = [l for l in out.splitlines() if l.startswith("chain at 11: ")]
        f.write('{"position": 11, "chain_hash": "%s"}' % (chain[0].split()[-1] if chain else ""))
    rc, out = kappa("verify", os.path.join(tmp, "data"), "--digest", os.path.join(tmp, "digest.json"))
    check(rc == 0 and "extends the digest at position 11" in out, "verify proves the log extends a digest", out)

    # Re-link the second segment's first batch to a wrong previous value, with a right CRC:
    # kappa check (CRCs only) passes, kappa verify names the break.
    seg1 = os.path.join(d, "%020d.log" % 6)
    with open(seg1, "r+b") as f:
        raw = bytearray(f.read())
        n = struct.unpack_from("<I", raw, 8)[0]
        raw[48:80] = hashlib.blake2b(b"\0" * 32 + bytes(raw[8:48]) + bytes(raw[80:n]), digest_size=32).digest()
        struct.pack_into("<I", raw, 4, crc32c(bytes(raw[8:n])))
        f.seek(0)
        f.write(raw)
    rc, out = kappa("check", os.path.join(tmp, "data"))
    check(rc == 0, "a re-linked batch with a right CRC passes kappa check", out)
    rc, out = kappa("verify", os.path.join(tmp, "data"))
    check(rc == 3 and "%s offset 0 position 6" % seg1 in out, "kappa verify names the broken link", out)

    seg0 = os.path.join(d, "%020d.log" % 0)
    with open(seg0, "r+b") as f:
        f.seek(layout[0][1] + 90)
        b = f.read(1)
        f.seek(layout[0][1] + 90)
        f.write(bytes([b[0] ^ 0xFF]))
    rc, out = kappa("check", d)
    check(rc == 3 and "offset %d (position 1)" % layout[0][1] in out and seg0 in out,
          "a flipped byte in a sealed segment is corruption naming segment, offset and position", out)

    shutil.rmtree(d)
    layout = write_log(d, [[2, 2, 2]])
    seg0 = os.path.join(d, "%020d.log" % 0)
    size = os.path.getsize(seg0)
    os.truncate(seg0, size - 5)
    rc, out = kappa("check", d)
    check(rc == 0 and "torn tail" in out and "ok: 4 events" in out, "a cut tail is reported as torn, not as corruption", out)

    with open(seg0, "ab") as f:
        f.truncate(layout[0][2])
        f.write(b"\0" * 8192)
    rc, out = kappa("check", d)
    check(rc == 0 and "torn" not in out and "ok: 4 events" in out, "a zero-filled tail is the clean end", out)

    rc, out = kappa("check", os.path.join(tmp, "nope"))
    check(rc == 2 and "no such directory" in out, "a missing directory exits 2 with a message", out)
    rc, out = kappa("check")
    check(rc == 2 and "usage" in out, "no argument prints usage and exits 2", out)
    rc, out = kappa("frobnicate")
    check(rc == 2 and "unknown command" in out, "an unknown command exits 2", out)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("1..%d" % len(results))
sys.exit(0 if all(results) else 1)
