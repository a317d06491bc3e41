"""``python -m raggym_env`` is the ``raggym`` command."""

from raggym_env.cli import main

raise SystemExit(main())
