"""``python -m earsight.train`` and ``torchrun -m earsight.train``: the ``earsight train`` command."""

from .loop import main

raise SystemExit(main())
