"""HSIR kit: a reproducibility kit for "Better, Faster: Harnessing Self-Improvement in Large Reasoning Models".

One module per concept of the paper; see README.md and DESIGN.md (shared/) for the map.
"""

__version__ = "0.1.0"

import os as _os

# CUDA: grow memory segments instead of fixed blocks, so that passes of varying length do not strand memory
# (on an H200, 9.6-11.6 GiB reserved but unallocated when SFT and DPO ran out of memory; PyTorch reads it at its
# first CUDA allocation, so it is set here, before any; a user's own setting wins)
_os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

if _os.environ.get("HSIR_LOG_DIR"):  # a headless run: library INFO logs go to the run's log file (hsir.progress)
    from hsir.progress import route_library_logs as _route

    _route(_os.environ["HSIR_LOG_DIR"])
