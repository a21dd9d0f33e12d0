"""attncc.nets: torchvision-compatible layouts and the attention sites of the papers.

torchvision is not a dependency, so its layouts are written out here from its source
(torchvision/models/resnet.py, mobilenetv2.py): the expected state_dict keys and shapes, and the
published parameter counts of its model cards.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from attncc import nets
from attncc.diagnostics import HyperparameterError

# torchvision's model cards (num_params)
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnext50_32x4d": 25_028_904,
    "mobilenet_v2": 3_504_872,
}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def resnet_keys(layers: list[int], bottleneck: bool) -> list[str]:
    """torchvision ResNet's state_dict keys, in order."""
    keys = ["conv1.weight", *(f"bn1.{k}" for k in BN)]
    convs = 3 if bottleneck else 2
    inplanes = 64
    for s, n in enumerate(layers, start=1):
        out = 64 * 2 ** (s - 1) * (4 if bottleneck else 1)
        for b in range(n):
            p = f"layer{s}.{b}."
            for i in range(1, convs + 1):
                keys += [f"{p}conv{i}.weight", *(f"{p}bn{i}.{k}" for k in BN)]
            if b == 0 and (s > 1 or inplanes != out):
                keys += [f"{p}downsample.0.weight", *(f"{p}downsample.1.{k}" for k in BN)]
            inplanes = out
    return [*keys, "fc.weight", "fc.bias"]


def mobilenet_v2_keys() -> list[str]:
    """torchvision MobileNetV2's state_dict keys, in order."""
    keys = ["features.0.0.weight", *(f"features.0.1.{k}" for k in BN)]
    i = 1
    for t, _c, n, _s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                         [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
        for _ in range(n):
            p = f"features.{i}.conv."
            j = 0
            for _layer in range(2 if t != 1 else 1):  # Conv2dNormActivation: .0 conv, .1 BN
                keys += [f"{p}{j}.0.weight", *(f"{p}{j}.1.{k}" for k in BN)]
                j += 1
            keys += [f"{p}{j}.weight", *(f"{p}{j + 1}.{k}" for k in BN)]
            i += 1
    keys += ["features.18.0.weight", *(f"features.18.1.{k}" for k in BN)]
    return [*keys, "classifier.1.weight", "classifier.1.bias"]


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS))
def test_parameter_counts_are_torchvisions(name):
    assert n_params(nets.NETS[name]()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize(("name", "keys"), [
    ("resnet18", resnet_keys([2, 2, 2, 2], False)),
    ("resnet50", resnet_keys([3, 4, 6, 3], True)),
    ("mobilenet_v2", mobilenet_v2_keys()),
])
def test_state_dict_keys_are_torchvisions(name, keys):
    assert list(nets.NETS[name]().state_dict()) == keys


def test_shapes_of_torchvision_layers():
    sd = nets.resnext50_32x4d().state_dict()
    assert sd["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)      # 32 groups × 4 wide
    assert sd["layer4.2.conv3.weight"].shape == (2048, 1024, 1, 1)
    mb = nets.mobilenet_v2().state_dict()
    assert mb["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)     # t=1: depthwise first
    assert mb["features.2.conv.0.0.weight"].shape == (96, 16, 1, 1)
    assert mb["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
    assert mb["classifier.1.weight"].shape == (1000, 1280)


def test_plain_weights_load_into_a_net_with_attention():
    plain = nets.resnet18().state_dict()
    m = nets.resnet18(attention="se", attention_args={"r": 8})
    result = m.load_state_dict(plain, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(".attn." in k for k in result.missing_keys)
    # and the backbone loads strictly into a fresh plain one
    nets.resnet18().load_state_dict(plain, strict=True)


def test_stride_in_1x1_moves_the_stride_only():
    a, b = nets.resnet50(), nets.resnet50(stride_in_1x1=True)
    assert b.layer2[0].conv1.stride == (2, 2) and b.layer2[0].conv2.stride == (1, 1)
    assert a.layer2[0].conv1.stride == (1, 1) and a.layer2[0].conv2.stride == (2, 2)
    assert {k: v.shape for k, v in a.state_dict().items()} == {
        k: v.shape for k, v in b.state_dict().items()}


def sites(m: nn.Module) -> dict[str, str]:
    """Attention modules by name, with their compiled block's name."""
    return {name: getattr(getattr(mod, "ir", None), "block", type(mod).__name__)
            for name, mod in m.named_modules()
            if name.rsplit(".", 1)[-1].startswith("attn") or name.endswith(".sk")}


def run(m: nn.Module, size: int = 32) -> torch.Tensor:
    m.eval()
    with torch.no_grad():
        return m(torch.randn(2, 3, size, size))


def test_branch_placement_se_after_the_last_bn():
    m = nets.resnet18(attention="se", attention_args={"r": 8}, num_classes=10)
    assert sorted(sites(m)) == [f"layer{s}.{b}.attn" for s in range(1, 5) for b in range(2)]
    assert m.layer3[1].attn.ir.dims["C"] == 256
    assert run(m).shape == (2, 10)


def test_branch_block_sees_the_bn_output_before_the_addition():
    seen = {}
    m = nets.resnet18(attention=lambda c: nn.Identity(), num_classes=10,
                      placement="branch").eval()
    blk = m.layer1[0]
    blk.attn.register_forward_hook(lambda mod, i, o: seen.setdefault("in", i[0]))
    blk.bn2.register_forward_hook(lambda mod, i, o: seen.setdefault("bn2", o))
    run(m)
    assert torch.equal(seen["in"], seen["bn2"])


def test_gct_before_every_conv():
    m = nets.resnet18(attention="gct", num_classes=10)
    names = sites(m)
    assert "attn_conv1" in names and m.attn_conv1.ir.dims["C"] == 3      # the stem
    assert "layer2.0.attn_downsample" in names and "layer1.0.attn_downsample" not in names
    n_convs = sum(isinstance(x, nn.Conv2d) for x in m.modules())  # GCT has no conv
    assert len(names) == n_convs
    assert run(m).shape == (2, 10)


def test_bam_after_stages_1_to_3():
    m = nets.resnet50(attention="bam", num_classes=10)
    assert sorted(sites(m)) == ["attn_layer1", "attn_layer2", "attn_layer3"]
    assert [m.attn_layer1.ir.dims["C"], m.attn_layer3.ir.dims["C"]] == [256, 1024]


def test_simam_after_the_3x3_conv():
    m = nets.resnet18(attention="simam", num_classes=10)
    assert set(sites(m)) == {f"layer{s}.{b}.attn_3x3" for s in range(1, 5) for b in range(2)}
    assert run(m, 64).shape == (2, 10)  # SimAM's variance needs maps of 2+ pixels


def test_nonlocal_one_block_in_res4():
    m = nets.resnet50(attention="nonlocal", num_classes=10)
    assert sites(m) == {"layer3.4.attn_out": "NonLocal"}


def test_gc_in_stages_2_to_4():
    m = nets.resnet18(attention="gc", attention_args={"r": 4})
    assert {k.split(".")[0] for k in sites(m)} == {"layer2", "layer3", "layer4"}


def test_sk_replaces_the_3x3_conv_and_its_bn():
    m = nets.resnet18(attention="sk", attention_args={"groups": 8}, num_classes=10)
    blk = m.layer2[1]
    assert blk.conv2 is None and blk.bn2 is None and blk.sk.ir.block == "SK"
    assert m.layer2[0].sk is not None  # BasicBlock: the stride is in conv1
    assert "layer2.1.conv2.weight" not in m.state_dict()
    assert run(m).shape == (2, 10)


def test_sk_keeps_a_strided_3x3_conv():
    m = nets.resnet50(attention="sk", attention_args={"groups": 8}, num_classes=10,
                      placement=nets.Placement("replace_3x3", stages=(2,)))
    assert sorted(sites(m)) == ["layer2.1.sk", "layer2.2.sk", "layer2.3.sk"]
    assert m.layer2[0].conv2.stride == (2, 2)
    s = nets.resnet50(attention="sk", attention_args={"groups": 8}, stride_in_1x1=True,
                      placement=nets.Placement("replace_3x3", stages=(2,)))
    assert "layer2.0.sk" in sites(s)  # stride in the 1×1: every 3×3 is replaced


def test_fcanet_gets_each_stages_map_size():
    m = nets.resnet18(attention="fcanet", attention_args={"n": 4}, input_size=32,
                      num_classes=10)
    assert [m.layer1[0].attn.ir.dims["H"], m.layer4[1].attn.ir.dims["H"]] == [8, 1]
    assert run(m).shape == (2, 10)


def test_mobilenet_coordatt_after_the_depthwise_conv():
    m = nets.mobilenet_v2(attention="coordatt", num_classes=10)
    names = sites(m)
    assert len(names) == 17 and all(k.endswith(".attn_dw") for k in names)
    assert m.features[1].attn_dw.ir.dims["C"] == 32 and m.features[2].attn_dw.ir.dims["C"] == 96
    # 3,951,504 with 1000 classes: the CA paper's 3.95M
    assert n_params(m) - n_params(nets.mobilenet_v2(num_classes=10)) == 3_951_504 - 3_504_872
    assert run(m).shape == (2, 10)


def test_mobilenet_branch_placement_in_chosen_stages():
    m = nets.mobilenet_v2(attention="eca", placement=nets.Placement("branch", stages=(2, 3)),
                          num_classes=10)
    assert sorted(sites(m)) == [f"features.{i}.attn" for i in range(2, 7)]
    assert run(m).shape == (2, 10)


def test_attention_args_reach_the_block_and_grads_flow():
    m = nets.resnet18(attention="cbam", attention_args={"r": 4, "k": 3}, num_classes=10)
    assert m.layer1[0].attn.ir.hyper["r"] == 4
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    assert m.layer4[1].attn.state_dict() and all(
        p.grad is not None for p in m.layer4[1].attn.parameters())


def test_attention_keeps_its_own_init():
    # GC's last layer starts at zero (the block is the identity); the backbone's init loop
    # must not overwrite it
    m = nets.resnet18(attention="gc")
    zero = [v for k, v in m.layer2[0].attn.state_dict().items() if "channel_add_conv.3" in k]
    assert zero and all(torch.count_nonzero(v) == 0 for v in zero)


@pytest.mark.parametrize(("kw", "message"), [
    ({"attention": "se", "placement": "everywhere"}, "unknown placement"),
    ({"attention": "vit"}, "no paper placement"),
    ({"attention": "se", "attention_args": {"C": 8}}, "must not set C"),
    ({"attention_args": {"r": 8}}, "without attention"),
    ({"attention": 3}, "must be a spec name"),
])
def test_bad_arguments_are_diagnosed(kw, message):
    with pytest.raises(HyperparameterError, match=message):
        nets.resnet18(**kw)


def test_mobilenet_refuses_resnet_only_placements():
    with pytest.raises(HyperparameterError, match="not offered in MobileNetV2"):
        nets.mobilenet_v2(attention="bam")


def test_import_attncc_does_not_import_torch():
    code = ("import attncc, sys; t = 'torch' in sys.modules; "
            "print(t, callable(attncc.nets.resnet18), callable(attncc.insert), "
            "callable(attncc.count))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False True True True"
