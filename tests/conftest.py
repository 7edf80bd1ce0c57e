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


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ImageFolder for training runs, ``train/<shape>/<i>.png``: 16 random-coloured ellipses,
    rectangles and triangles each, 72 px, on random backgrounds."""
    import numpy as np
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for shape in ("ellipse", "rectangle", "triangle"):
        folder = root / "train" / shape
        folder.mkdir(parents=True)
        for i in range(16):
            im = Image.new("RGB", (72, 72), tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(im)
            x0, y0 = (int(v) for v in rng.integers(0, 30, 2))
            x1, y1 = x0 + int(rng.integers(25, 40)), y0 + int(rng.integers(25, 40))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            if shape == "ellipse":
                draw.ellipse([x0, y0, x1, y1], fill=fill)
            elif shape == "rectangle":
                draw.rectangle([x0, y0, x1, y1], fill=fill)
            else:
                draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill)
            im.save(folder / f"{i}.png")
    return root


def train_run(config: str, data_root: Path, out_dir: Path, *overrides: str) -> torch.nn.Module:
    """``python -m training.train CONFIG`` on ``data_root`` into ``out_dir``; returns the trained model."""
    from training import train

    return train.main([config, f"data_root={data_root}", f"out_dir={out_dir}", *overrides])


# ---------------------------------------------------------------------- the app (tests/test_app_*.py, test_browser.py)
EXAMPLE = REPO / "examples" / "chelsea.jpg"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: analytics call home


@pytest.fixture(scope="session")
def app():
    """app.py as a module (importing it loads no model)."""
    import importlib
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("app")


@pytest.fixture(scope="session")
def shipped_checkpoint() -> str:
    """The shipped default, ``checkpoints/default``: the tests that use it fail, not shrink, when it does not load."""
    from hierseg import load_segmenter

    try:
        load_segmenter("default", device="cpu")
    except Exception as error:  # noqa: BLE001  (whatever the cause, say it once, loudly)
        pytest.fail(f"the shipped default checkpoint does not load ({type(error).__name__}: {error}); "
                    "the tests that run on it cannot pass without it", pytrace=False)
    return "default"


@pytest.fixture(scope="session")
def default(shipped_checkpoint: str):
    """The shipped default's Segmenter on the CPU, shared by the session (it keeps no state between photos)."""
    from hierseg import load_segmenter

    return load_segmenter(shipped_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def chelsea(default):
    """The shipped default's tree of skimage's cat photo."""
    from skimage import data

    return default(data.chelsea())


@pytest.fixture(scope="session")
def random_micro_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained CAST saved as a checkpoint folder (64 px, 3 classes, seeded: the same model every run),
    for tests that need any checkpoint that loads quickly, not the shipped one's results."""
    from hierseg.checkpoints import CheckpointConfig, save_checkpoint
    from hierseg.model import build_cast
    from hierseg.superpixels import SEEDS_MOCO

    torch.manual_seed(0)
    model = build_cast("cast_micro", img_size=64, num_classes=3).eval()
    config = CheckpointConfig(model=model.config, superpixels=SEEDS_MOCO, class_names=["sky", "cat", "grass"],
                              name="random-micro")
    return save_checkpoint(model, config, tmp_path_factory.mktemp("checkpoint") / "random-micro")


@pytest.fixture(scope="session")
def app_checkpoint(shipped_checkpoint: str) -> str:
    """The checkpoint the app tests run on: the shipped default."""
    return shipped_checkpoint


@pytest.fixture(scope="session")
def app_url(app, app_checkpoint: str):
    """The app on ``app_checkpoint``, launched in this process for the whole test session; its URL."""
    demo = app.build_demo(default_checkpoint=app_checkpoint)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    yield url
    demo.close()
