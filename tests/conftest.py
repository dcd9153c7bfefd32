"""Suite-wide settings: CI replays a fixed set of hypothesis examples.

``.ci/run`` sets ``CARBYNE_HYPOTHESIS_PROFILE=ci`` so a landing is never
decided by the luck of a random draw; a developer's run (the default
profile) keeps exploring new examples.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("CARBYNE_HYPOTHESIS_PROFILE", "default"))
