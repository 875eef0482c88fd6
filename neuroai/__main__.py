"""``python -m neuroai``: the ``neuroai`` command (see :mod:`neuroai.cli`)."""

from neuroai.cli import main

raise SystemExit(main())
