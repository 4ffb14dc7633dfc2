"""`python -m train` and `torchrun --nproc_per_node N -m train`: the `mdeberta train` command."""

import sys

from mdeberta.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
