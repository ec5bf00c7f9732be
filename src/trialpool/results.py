"""Old import path of :mod:`trialpool.stats.results` (moved in 1.0; the README documents it).

The name is an alias of the same module object, so ``trialpool.results.X is
trialpool.stats.results.X``.
"""

import sys

from trialpool.stats import results as _moved

sys.modules[__name__] = _moved
