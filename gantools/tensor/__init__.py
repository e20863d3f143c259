"""The torch side of gantools: kornia's convention, tensors ``(*, C, H, W)``, RGB, float in [0, 1].

:mod:`gantools.tensor.convert` is the one place arrays become tensors and back (and BGR becomes
RGB); :mod:`gantools.tensor.tiling` runs a network whole or tile by tile. Importing this package
imports nothing heavy; its modules import torch inside their functions.
"""
