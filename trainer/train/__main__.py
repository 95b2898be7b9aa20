"""``python -m labrador.trainer.train --config FILE``: the same as ``labrador train`` (handy under ``torchrun`` and
``accelerate launch``)."""

import sys

from labrador.trainer.training import main

sys.exit(main())
