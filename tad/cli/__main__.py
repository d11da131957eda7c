"""``python -m tad.cli``: the same as the ``tad`` command."""
from tad.cli import main

if __name__ == "__main__":
    main()
