"""`python -m mdeberta.train`, `torchrun --nproc_per_node N -m mdeberta.train`: `mdeberta train`."""

from mdeberta.train.cli import main

if __name__ == "__main__":
    main()
