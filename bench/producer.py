"""The log producer every throughput run uses, with or without a manager.

``producer.py ID COUNT DONE_DIR PEERS`` writes COUNT lines of about 80 bytes to stdout, in blocks:

    ID SEQUENCE PAYLOAD CRC32

then records its own CPU time in ``DONE_DIR/ID`` and waits (up to 60 s) until all PEERS producers
have done the same before it exits. A manager stops everything when its first process exits, so
without this barrier a fast producer would cut off its slower siblings.
"""

from __future__ import annotations

import os
import sys
import time
import zlib

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 2
PAYLOAD_SIZE = 60
BLOCK_LINES = 512


def line(producer: int, sequence: int) -> str:
    start = sequence % 62
    body = f"{producer} {sequence:07d} {ALPHABET[start : start + PAYLOAD_SIZE]}"
    return f"{body} {zlib.crc32(body.encode()):08x}\n"


def main(producer: int, count: int, done_dir: str, peers: int) -> None:
    out = sys.stdout.buffer
    for first in range(0, count, BLOCK_LINES):
        block = "".join(line(producer, s) for s in range(first, min(first + BLOCK_LINES, count)))
        out.write(block.encode())
        out.flush()
    times = os.times()
    marker = os.path.join(done_dir, str(producer))
    with open(marker + ".tmp", "w") as file:
        file.write(f"{times.user + times.system}\n")
    os.rename(marker + ".tmp", marker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum(1 for name in os.listdir(done_dir) if name.isdigit()) >= peers:
            return
        time.sleep(0.005)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
