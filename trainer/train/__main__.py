"""``python -m trainer.train --config FILE``: the same as ``labrador train`` (handy under ``torchrun``)."""

import sys

from .cli import main

sys.exit(main())
