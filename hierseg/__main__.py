"""``python -m hierseg ...`` (what ``torchrun -m hierseg segment-dataset ...`` runs)."""
import sys

from .cli import main

sys.exit(main())
