from aezoo.cli import main

raise SystemExit(main())
