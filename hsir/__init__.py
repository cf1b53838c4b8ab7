"""HSIR kit: a reproducibility kit for "Better, Faster: Harnessing Self-Improvement in Large Reasoning Models".

One module per concept of the paper; see README.md and DESIGN.md (shared/) for the map.
"""

__version__ = "0.1.0"
