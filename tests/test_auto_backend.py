"""`backend="auto"`: the same module (weights, keys, training) whose inference calls run in
the backend measured faster per input shape; it follows weight changes and never serves
autograd, training mode or attention maps from onnxruntime."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import attncc
from attncc.api import randomize_
from attncc.backends import auto
from attncc.diagnostics import AttnccError


def _pair(spec="cbam", **hyper):
    hyper = hyper or {"C": 24}
    fast = randomize_(attncc.compile(spec, backend="auto", **hyper), 0).eval()
    plain = attncc.compile(spec, **hyper).eval()
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def _force(module, backend):
    """Pin the choice for every shape the test uses (the measurement itself is noise)."""
    real = auto._choose

    def fixed(m, args):
        c = real(m, args)
        return auto.Choice(backend, c.torch_ms, c.onnxruntime_ms)

    return fixed


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_auto_equals_torch_in_either_backend(monkeypatch, backend):
    fast, plain = _pair()
    monkeypatch.setattr(auto, "_choose", _force(fast, backend))
    x = torch.randn(2, 24, 5, 7)
    with torch.no_grad():
        got, want = fast(x), plain(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    (choice,) = fast.auto_choices.values()
    assert choice.backend == backend and choice.onnxruntime_ms is not None
    assert set(fast.state_dict()) == set(plain.state_dict())
    assert type(fast).__name__ == type(plain).__name__


def test_measures_once_per_shape():
    fast, _ = _pair()
    with torch.no_grad():
        for shape in [(2, 24, 5, 7), (2, 24, 5, 7), (3, 24, 6, 4)]:
            fast(torch.randn(shape))
    assert list(fast.auto_choices) == [((2, 24, 5, 7),), ((3, 24, 6, 4),)]


def test_follows_weight_changes(monkeypatch):
    fast, plain = _pair()
    monkeypatch.setattr(auto, "_choose", _force(fast, "onnxruntime"))
    x = torch.randn(2, 24, 5, 7)
    with torch.no_grad():
        fast(x)
        for p in fast.parameters():
            p.mul_(-0.5)  # an in-place update, as an optimiser's
        plain.load_state_dict(fast.state_dict())
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
        fresh = randomize_(attncc.compile("cbam", C=24), 5).state_dict()
        fast.load_state_dict(fresh)
        plain.load_state_dict(fresh)
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)


def test_autograd_training_and_maps_stay_in_torch(monkeypatch):
    fast, _ = _pair()
    monkeypatch.setattr(auto, "_choose", _force(fast, "onnxruntime"))
    x = torch.randn(2, 24, 5, 7)
    y = fast(x)  # autograd on
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    assert all(p.grad is not None for p in fast.parameters() if p.requires_grad)
    with torch.no_grad():
        _, maps = fast(x, return_attention=True)
        assert set(maps) == {"s_c", "s_s"}
        fast.train()
        fast(x)
    assert fast.auto_choices == {}  # none of these calls measured anything


def test_copies_and_pickles_without_the_session():
    fast, _ = _pair()
    with torch.no_grad():
        fast(torch.randn(2, 24, 5, 7))
    for clone in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert set(clone.state_dict()) == set(fast.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(clone(torch.randn(1, 24, 3, 3)).shape,
                                       torch.Size([1, 24, 3, 3]))


def test_unknown_backend_is_a_diagnostic():
    with pytest.raises(AttnccError, match="unknown backend `onnx`"):
        attncc.compile("se", C=64, backend="onnx")
