"""`python -m mdeberta.train`, `torchrun --nproc_per_node N -m mdeberta.train`: `mdeberta train`."""

import sys

from mdeberta.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
