"""Old import path of :mod:`trialpool.stats.pooling` (moved in 1.0; the README documents it).

The name is an alias of the same module object, so ``trialpool.pooling.X is
trialpool.stats.pooling.X``.
"""

import sys

from trialpool.stats import pooling as _moved

sys.modules[__name__] = _moved
