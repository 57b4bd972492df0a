"""The ZeroGPU wrapper: a no-op without the ``spaces`` package, ``spaces.GPU`` with it."""

from __future__ import annotations

import pytest

from motive_core import gpu


def work(x: int) -> int:
    return x + 1


def test_without_spaces_the_function_is_returned_unchanged(monkeypatch):
    monkeypatch.setattr(gpu, "spaces", None)
    assert gpu.gpu_task(work) is work
    assert gpu.gpu_task(duration=120)(work) is work
    assert gpu.gpu_task(work)(1) == 2


def test_with_spaces_the_function_goes_through_spaces_gpu():
    spaces = pytest.importorskip("spaces")
    wrapped = gpu.gpu_task(work, duration=30)
    assert wrapped(1) == 2  # outside a ZeroGPU Space, spaces.GPU runs the function in place
    assert gpu.spaces is spaces
