"""Allow ``python -m labsupport``, the same as the ``labsupport`` command."""

import sys

from labsupport.cli import main

sys.exit(main())
