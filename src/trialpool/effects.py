"""Old import path of :mod:`trialpool.stats.effects` (moved in 1.0; the README documents it).

The name is an alias of the same module object, so ``trialpool.effects.X is
trialpool.stats.effects.X``.
"""

import sys

from trialpool.stats import effects as _moved

sys.modules[__name__] = _moved
