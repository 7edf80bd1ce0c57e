"""ZeroGPU placement (explorer/pool.py), on the CPU with a fake ``spaces``: weights are placed on "cuda" at
start-up outside the decorated call, the GPU is held only inside it for the stated duration, and the
call's arguments pickle small, as ``spaces`` sends them to a forked worker. Elsewhere nothing changes."""
from __future__ import annotations

import importlib
import pickle
import sys
import types
from typing import Any

import numpy as np
import pytest

import explorer.pool

PHOTO = np.zeros((8, 8, 3), np.uint8)


class FakeSpaces(types.ModuleType):
    """``spaces`` 0.51's decorator on a ZeroGPU Space, as far as placement goes: records the duration,
    pickles the arguments (they cross a process boundary) and marks the time inside the call."""

    def __init__(self) -> None:
        super().__init__("spaces")
        self.durations: list[Any] = []
        self.inside = False
        self.payload_bytes: list[int] = []

    def GPU(self, task: Any = None, *, duration: Any = None, size: Any = None) -> Any:  # noqa: N802 (spaces' name)
        if not callable(task):
            return lambda fn: self.GPU(fn, duration=duration, size=size)
        self.durations.append(duration)

        def on_gpu(*args: Any, **kwargs: Any) -> Any:
            payload = pickle.dumps((args, kwargs))
            self.payload_bytes.append(len(payload))
            self.inside = True
            try:
                return task(*pickle.loads(payload)[0], **kwargs)
            finally:
                self.inside = False

        return on_gpu


class FakeModel:
    def __init__(self, spaces: FakeSpaces | None, moves: list[tuple[str, bool]]) -> None:
        self.spaces, self.moves = spaces, moves
        self.weights = np.zeros(1 << 20, np.float32)  # 4 MB: too big to travel to a worker unnoticed

    def to(self, device: str) -> FakeModel:
        self.moves.append((device, bool(self.spaces and self.spaces.inside)))
        return self


class FakeSegmenter:
    def __init__(self, model: FakeModel, calls: list[bool]) -> None:
        self.model, self.calls = model, calls

    def __call__(self, rgb: np.ndarray) -> str:
        self.calls.append(bool(self.model.spaces and self.model.spaces.inside))
        return f"tree of {rgb.shape}"


@pytest.fixture
def pool_module(monkeypatch: pytest.MonkeyPatch):
    """``explorer.pool`` re-imported under the test's ``spaces`` and environment; the real one restored after."""
    def reload(spaces: types.ModuleType | None, zero_gpu: bool) -> types.ModuleType:
        monkeypatch.setitem(sys.modules, "spaces", spaces)  # None makes `import spaces` fail
        if zero_gpu:
            monkeypatch.setenv("SPACES_ZERO_GPU", "true")
        else:
            monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
        return importlib.reload(explorer.pool)

    yield reload
    monkeypatch.undo()
    importlib.reload(explorer.pool)


def fake_loader(module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, spaces: FakeSpaces | None):
    """Replace ``load_segmenter`` where the pool calls it: records each load's device and moves."""
    loads: list[tuple[str, str, bool]] = []
    moves: list[tuple[str, bool]] = []
    calls: list[bool] = []

    def load_segmenter(name: str, device: str = "auto") -> FakeSegmenter:
        loads.append((name, device, bool(spaces and spaces.inside)))
        return FakeSegmenter(FakeModel(spaces, moves).to(device), calls)

    monkeypatch.setattr(module, "load_segmenter", load_segmenter)
    return loads, moves, calls


def test_zero_gpu_places_weights_at_start_up_and_holds_the_gpu_only_for_the_call(pool_module, monkeypatch) -> None:
    spaces = FakeSpaces()
    pool = pool_module(spaces, zero_gpu=True)
    loads, moves, calls = fake_loader(pool, monkeypatch, spaces)

    assert spaces.durations == [pool.GPU_SECONDS] and 0 < pool.GPU_SECONDS <= 60  # ZeroGPU's default is 60 s
    segmenters = pool.SegmenterPool()  # the app's default loader: load_for_host
    segmenters.get("default")  # the app preloads before launch()
    assert loads == [("default", "cuda", False)] and moves == [("cuda", False)]

    assert pool.run_model(segmenters, "default", PHOTO) == "tree of (8, 8, 3)"
    assert pool.run_model(segmenters, "official/other", PHOTO) == "tree of (8, 8, 3)"
    # A checkpoint picked later is loaded once, in the main process, before the GPU is asked for.
    assert loads == [("default", "cuda", False), ("official/other", "cuda", False)]
    assert all(device == "cuda" and not inside for device, inside in moves)
    assert calls == [True, True]  # the segmenter ran inside the decorated call, and only there
    # The pool travels by reference: the photo and a name, not 4 MB of weights.
    assert max(spaces.payload_bytes) < PHOTO.nbytes + 4096


def test_without_zero_gpu_the_cpu_path_is_unchanged(pool_module, monkeypatch) -> None:
    pool = pool_module(None, zero_gpu=False)  # no `spaces` installed: the decorator is a no-op
    loads, moves, calls = fake_loader(pool, monkeypatch, None)
    segmenters = pool.SegmenterPool()
    assert pool.run_model(segmenters, "default", PHOTO) == "tree of (8, 8, 3)"
    assert loads == [("default", "auto", False)] and moves == [("auto", False)] and calls == [False]

    spaces = FakeSpaces()  # `spaces` installed on a machine that is not a ZeroGPU Space: the same "auto"
    pool = pool_module(spaces, zero_gpu=False)
    loads, moves, calls = fake_loader(pool, monkeypatch, spaces)
    assert pool.run_model(pool.SegmenterPool(), "default", PHOTO) == "tree of (8, 8, 3)"
    assert loads == [("default", "auto", False)]


def test_a_pool_unpickles_to_itself() -> None:
    pool = explorer.pool.SegmenterPool(lambda name: f"segmenter {name}")
    pool.get("a")
    assert pickle.loads(pickle.dumps(pool)) is pool
