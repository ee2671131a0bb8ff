"""``python -m flashtrade_lib.course COMMAND`` — the course kit's commands (see :mod:`flashtrade_lib.course.cli`)."""

from flashtrade_lib.course.cli import main

raise SystemExit(main())
