"""Video and animation support of ``gantools run`` (``pip install 'gantools[video]'`` for video).

Layout of the package:

* :mod:`~gantools.video.names` - which inputs are videos or animations and where their results
  go (names only; imported by the batch planner, loads nothing).
* :mod:`~gantools.video.options` - the ``--frames``, ``--codec``, ``--crf``, ``--pix-fmt`` and
  ``--batch-frames`` flags.
* :mod:`~gantools.video.batching` - frames through a network plugin in batches (one pass for N).
* :mod:`~gantools.video.codec` - decoding, encoding and stream copying with PyAV.
* :mod:`~gantools.video.clipstats` - instance-norm statistics frozen over a clip (no flicker).
* :mod:`~gantools.video.jobs` - the batch hooks: one video, frames or animation job at a time.

Animated GIF, APNG and WebP are read and written by :mod:`gantools.image.animation` (Pillow).
Importing this package imports nothing: PyAV (``av``) is loaded only when a video is processed,
so ``gantools --help`` and installs without the extra never need it.
"""
