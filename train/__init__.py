"""The RTD trainer: loop, masking, checkpoints, metrics, export (mdeberta.rtd holds the model).

Entry points: `mdeberta train`, `python -m train`, `torchrun -m train` (see docs/training.md).
"""
