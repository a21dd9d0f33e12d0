"""attncc.insert: compiled blocks after chosen modules of any user model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attncc
from attncc import nets
from attncc.diagnostics import HyperparameterError, NameError_


class UserNet(nn.Module):
    """A model attncc knows nothing about: two conv stages and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(12, 20, 3, stride=2), nn.BatchNorm2d(20),
                                  nn.ReLU())
        self.head = nn.Linear(20, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((2, 3)))


def test_after_every_module_of_a_type():
    net = UserNet()
    new, added = attncc.insert(net, "se", where=nn.BatchNorm2d, r=4)
    assert [(a.position, a.hyper["C"], a.hyper["r"]) for a in added] == [
        ("stem.1", 12, 4), ("body.1", 20, 4)]
    assert new is not net and not any("attn" in k for k in net.state_dict())  # a copy
    # every old key is kept; the block's follow under the module's name
    old = set(net.state_dict())
    assert old < set(new.state_dict())
    assert {k.rsplit(".attn.", 1)[0] for k in set(new.state_dict()) - old} == {"stem.1", "body.1"}
    assert new(torch.randn(2, 3, 11, 13)).shape == (2, 5)


def test_the_block_sees_the_modules_output():
    net = UserNet().eval()
    new, (a,) = attncc.insert(net, lambda c: nn.Identity(), where="stem.2", copy=False,
                              example=torch.randn(1, 3, 8, 8))
    assert a.hyper == {"C": 12}
    assert new is net
    seen = {}
    a.block.register_forward_hook(lambda m, i, o: seen.setdefault("in", i[0]))
    net.stem[2].register_forward_hook(lambda m, i, o: seen.setdefault("relu", o))
    net(torch.randn(1, 3, 8, 8))
    assert torch.equal(seen["in"], seen["relu"])


def test_block_changes_the_output_exactly_as_applied_by_hand():
    net = UserNet().eval()
    new, (a,) = attncc.insert(net, "eca", where="body.1")
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        h = net.body[1](net.body[0](net.stem(x)))
        ref = net.head(a.block(h).relu().mean((2, 3)))
        assert torch.allclose(new(x), ref, atol=1e-6)


def test_glob_names_on_a_backbone():
    m = nets.resnet18(num_classes=10)
    new, added = attncc.insert(m, "cbam", where="layer*.*.bn2", r=8, k=3)
    assert len(added) == 8 and added[-1].position == "layer4.1.bn2"
    assert added[-1].hyper == {"C": 512, "r": 8, "k": 3}
    new(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in added[0].block.parameters())


def test_predicate_and_dry_run_give_map_sizes():
    m = UserNet()
    pick = lambda name, mod: isinstance(mod, nn.ReLU)  # noqa: E731
    new, added = attncc.insert(m, "fcanet", where=pick, example=torch.randn(1, 3, 14, 10),
                               r=2, n=4)
    assert [(a.hyper["C"], a.block.ir.dims["H"], a.block.ir.dims["W"]) for a in added] == [
        (12, 14, 10), (20, 6, 4)]
    assert new(torch.randn(2, 3, 14, 10)).shape == (2, 5)


def test_after_a_sequential_is_after_its_last_layer():
    new, (a,) = attncc.insert(UserNet(), "simam", where="body")
    assert a.hyper["C"] == 20 and isinstance(new.body[2].attn, nn.Module)
    assert new(torch.randn(1, 3, 9, 9)).shape == (1, 5)


def test_state_dict_round_trip_and_old_weights_load():
    net = UserNet()
    new, _ = attncc.insert(net, "se", where=nn.BatchNorm2d, r=2)
    again, _ = attncc.insert(UserNet(), "se", where=nn.BatchNorm2d, r=2)
    again.load_state_dict(new.state_dict(), strict=True)
    result = again.load_state_dict(net.state_dict(), strict=False)
    assert not result.unexpected_keys and all(".attn." in k for k in result.missing_keys)


@pytest.mark.parametrize(("where", "error", "message"), [
    ("stem.7", NameError_, "no module named `stem.7`"),
    (nn.LSTM, HyperparameterError, "no module of type LSTM"),
    (3, HyperparameterError, "where= must be"),
])
def test_bad_positions_are_diagnosed(where, error, message):
    with pytest.raises(error, match=message):
        attncc.insert(UserNet(), "se", where=where)


def test_channels_unknown_without_example():
    class Scale(nn.Module):
        def forward(self, x):
            return 2 * x

    net = nn.Sequential(nn.Conv2d(3, 8, 1), Scale())
    with pytest.raises(HyperparameterError, match="pass example="):
        attncc.insert(net, "se", where="1")
    _, (a,) = attncc.insert(net, "se", where="1", example=torch.randn(1, 3, 5, 5), r=2)
    assert a.hyper["C"] == 8
