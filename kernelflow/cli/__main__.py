"""``python -m kernelflow.cli``: the same as the ``kernelflow`` command."""

from kernelflow.cli import main

if __name__ == "__main__":
    main(prog_name="kernelflow")
