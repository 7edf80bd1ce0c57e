import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HIERSEG_DATA", REPO.parent / "shared" / "data"))

# Tests run on 2 shared cores: more threads only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))


def shared_data(name: str) -> Path:
    """A folder of the shared data, or skip the test when it is not on this machine."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared data {path} is not available (set HIERSEG_DATA)")
    return path
