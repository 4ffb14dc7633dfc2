"""The RTD trainer: loop, masking, checkpoints, metrics, export (mdeberta.rtd holds the model).

Entry points: `mdeberta train`, `python -m mdeberta.train`, `torchrun -m mdeberta.train`
(see docs/training.md).
"""
