import sys

from aezoo.cli import main

status = main()
distributed = sys.modules.get("aezoo.distributed")  # imported only by a run of several processes
if distributed is not None and distributed.current().active:
    distributed.exit_now(status)
raise SystemExit(status)
