"""The learned matting path: PRN network, iterative decoding, checkpoint conversion.

* :mod:`.arch` -- the Progressive Refinement Network (``mgm`` and ``small``).
* :mod:`.prn` -- self-guided fusion of the side outputs.
* :mod:`.decode` -- confidence-guided iterative decoding (Mask2Alpha).
* :mod:`.options` -- the backend's options (no torch import: the CLI reads them cheaply).
* :mod:`.backend` -- the ``network`` matte backend used by the engine.
* :mod:`.convert` -- the MGMatting release checkpoint -> vfxmatte weights.

Nothing is imported here, so reading the options stays cheap.
"""
