"""A process for the exported-config tests: records its PORT, PS, environment and a child it
starts, then waits; on SIGTERM it records that and exits. Run as ``python3 export_probe.py DIR``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

out = Path(sys.argv[1])
name = os.environ["PS"]
child = subprocess.Popen(["sleep", "600"])


def stop(signum: int, frame: object) -> None:
    (out / f"{name}.term").write_text(signal.Signals(signum).name)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
record = {"pid": os.getpid(), "child": child.pid, "argv": sys.argv[2:], "env": dict(os.environ)}
(out / f"{name}.tmp").write_text(json.dumps(record))
os.replace(out / f"{name}.tmp", out / f"{name}.json")
while True:
    time.sleep(0.5)
