"""Compiled SE, ECA and CBAM against independent modules written from the papers' code.

The reference modules in tests/paper_refs load the compiled module's state_dict with
strict=True, so a drift in parameter names or shapes fails loudly before any number is
compared.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.cbam import CBAMReference
from paper_refs.eca import ECAReference
from paper_refs.se import SEReference

REFS = {
    "se": lambda hp: SEReference(hp["C"], r=hp["r"]),
    "eca": lambda hp: ECAReference(hp["C"], gamma=hp.get("gamma", 2), b=hp.get("b", 1)),
    "cbam": lambda hp: CBAMReference(hp["C"], r=hp["r"], k=hp["k"]),
}
CASES = [
    pytest.param("se", {"C": 24, "r": 4}, id="se-C24-r4"),
    pytest.param("se", {"C": 40, "r": 8}, id="se-C40-r8"),
    pytest.param("eca", {"C": 24}, id="eca-C24-k3"),
    pytest.param("eca", {"C": 40, "gamma": 1, "b": 2}, id="eca-C40-g1-b2-k7"),
    pytest.param("cbam", {"C": 24, "r": 4, "k": 7}, id="cbam-C24-r4-k7"),
    pytest.param("cbam", {"C": 40, "r": 8, "k": 3}, id="cbam-C40-r8-k3"),
]
SHAPES = [
    pytest.param((3, 7, 9), id="n3_h7_w9"),
    pytest.param((1, 11, 5), id="n1_h11_w5"),
]
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the paper reference holding the same weights."""
    return h.paired(spec, hyper, REFS[spec](hyper), seed=seed)


def _input(hyper: dict, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    return h.nchw(hyper["C"], shape, seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    x = _input(hyper, shape, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), **TOL)


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_for_one_training_step(spec, hyper):
    """Batch statistics, running-buffer updates and gradients all match the reference."""
    m, ref = _pair(spec, hyper)
    m.train()
    ref.train()
    x = _input(hyper, (3, 7, 9), seed=2)
    y, y_ref = m(x), ref(x)
    torch.testing.assert_close(y, y_ref, **TOL)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    got, want = m.state_dict(), ref.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], **TOL, msg=lambda s, k=k: f"{k}: {s}")
    grads = dict(ref.named_parameters())
    for name, p in m.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, **TOL,
                                   msg=lambda s, name=name: f"grad of {name}: {s}")


@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] == "cbam"])
def test_cbam_running_buffers_move_in_training(spec, hyper):
    """The training step above must really update BN's buffers (else it compares defaults)."""
    m, _ = _pair(spec, hyper)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    m(_input(hyper, (3, 7, 9), seed=4))
    after = m.state_dict()
    for k in ("s_s.batch_norm.running_mean", "s_s.batch_norm.running_var"):
        assert not torch.equal(after[k], before[k]), k
    assert after["s_s.batch_norm.num_batches_tracked"] == before[
        "s_s.batch_norm.num_batches_tracked"] + 1


@pytest.mark.parametrize(("C", "k"), [(64, 3), (256, 5), (512, 5), (1024, 5), (2048, 7)],
                         ids=str)
def test_eca_kernel_size_follows_the_authors_code(C, k):
    m = h.compile_spec("eca", {"C": C})
    ref = ECAReference(C)
    assert m.state_dict()["s.weight"].shape == (1, 1, k)
    assert ref.k == k
