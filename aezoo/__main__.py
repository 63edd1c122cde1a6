import sys

from aezoo.cli import main

status = main()
distributed = sys.modules.get("aezoo.distributed")  # loaded by a training; active: one of several processes
if distributed is not None and distributed.current().active:
    distributed.exit_now(status)
raise SystemExit(status)
