"""A producer that logs at full speed until it is stopped, for the control-under-load benchmark.

``chatter.py ID`` writes lines of exactly ``LINE_SIZE`` bytes to stdout, in blocks, for ever:

    ID SEQUENCE PADDING

SEQUENCE counts from 0 with nine digits, so a reader can check that every line is there, once,
in order. SIGTERM ends it (the default action), usually in the middle of a block.
"""

from __future__ import annotations

import sys

LINE_SIZE = 100
BLOCK_LINES = 256


def padding(producer: int) -> bytes:
    head = len(f"{producer} {0:09d} ")
    return b"." * (LINE_SIZE - head - 1) + b"\n"


def main(producer: int) -> None:
    out = sys.stdout.buffer
    tail = padding(producer)
    sequence = 0
    while True:
        out.write(
            b"".join(
                b"%d %09d %s" % (producer, s, tail) for s in range(sequence, sequence + BLOCK_LINES)
            )
        )
        out.flush()
        sequence += BLOCK_LINES


if __name__ == "__main__":
    main(int(sys.argv[1]))
