"""Evaluation metrics for hierarchical segmentations, one concern per module.

* :mod:`.regions`: BSDS500 covering, PRI and VI per level, ODS/OIS like the official benchmark.
* :mod:`.boundaries`: BSDS500 boundary precision/recall/F per level, ODS/OIS/AP.
* :mod:`.ucm`: a UCM read as a family of segmentations (to check the two above on benchmark inputs).
* :mod:`.parts`: majority-label mIoU for part/object discovery (Pascal-Part persons, Weizmann horses).
* :mod:`.tree`: shape of the tree (segments in one piece, parents with a single child).
* :mod:`.recognition`: image-level top-1/top-5 through the segmenter, beside the teacher.
* :mod:`.ground_truth`: reading BSDS500 ``.mat`` files, Pascal-Part and Weizmann masks.
* :mod:`.scorers`: the above accumulated per method and data set, image by image (``training.evaluate``).
"""
