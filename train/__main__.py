"""`python -m train` and `torchrun --nproc_per_node N -m train`: the `mdeberta train` command."""

import typer

from train.cli import train

if __name__ == "__main__":
    typer.run(train)
