"""HSIR kit: a reproducibility kit for "Better, Faster: Harnessing Self-Improvement in Large Reasoning Models".

One module per concept of the paper; see README.md and DESIGN.md (shared/) for the map.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("HSIR_LOG_DIR"):  # a headless run: library INFO logs go to the run's log file (hsir.progress)
    from hsir.progress import route_library_logs as _route

    _route(_os.environ["HSIR_LOG_DIR"])
