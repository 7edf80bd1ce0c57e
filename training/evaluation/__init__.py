"""Evaluation of trained models, one concern per module; the command line is ``python -m training.evaluate``.

* :mod:`.methods`: the segmentation methods CAST is compared with, adapted to one call.
* :mod:`.datasets`: where the evaluation sets are and which scorers apply to each.
* :mod:`.segmentation`: every method on every segmentation set, through one loop.
* :mod:`.recognition`: recognition through the segmenter, the teacher beside it.
* :mod:`.report`: the results as Markdown and a plot.
* :mod:`.held_out`: the held-out sets a training run scores at its end (metrics in the checkpoint).

The scorers themselves are in :mod:`training.metrics`.
"""
