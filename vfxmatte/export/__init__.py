"""Export of the per-frame network path: TorchScript, and the files for Nuke's Cattery.

* :mod:`.model` -- :class:`~vfxmatte.export.model.MatteExport`, the ``4 -> 4`` channel module.
* :mod:`.torchscript` -- build it from checkpoints, script it, check it, save it.
* :mod:`.cattery` -- the folder a Nuke user turns into a ``.cat`` with CatFileCreator.
"""
