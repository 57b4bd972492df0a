"""Motive Studio's library: motion attribution for video generation (Motive, arXiv 2601.08828).

Data flows one way: video → motion → mask → loss → gradient → projection → index → ranking.
"""

__version__ = "0.1.0"
