"""Where attention goes in a backbone, and how the backbones build a block for one position.

A placement names a kind of site and, optionally, which stages and which blocks of a stage
get one. The sites, in the words of the papers:

- `branch`: on the residual branch after its last BN, before the identity addition (SE, ECA,
  CBAM, SRM, GE, FcaNet, triplet; GC in stages 2-4). In MobileNetV2: after the projection BN
  of every inverted residual block, as the ECA code does.
- `conv`: before every convolution (GCT): the stem, each conv of a residual block and the
  downsampling conv (ResNet only).
- `after_3x3`: right after the 3×3 conv of each residual block, on its width (SimAM); in
  MobileNetV2 this is `dw`.
- `dw`: after the depthwise 3×3 conv (with its BN and ReLU6) of each inverted residual block
  (coordinate attention in MobileNetV2).
- `replace_3x3`: the block replaces the 3×3 conv and the BN after it (SK in ResNeXt, SCNet);
  a block whose 3×3 conv has stride 2 keeps its conv, since the blocks take no stride.
- `stage`: after a whole stage (BAM: after stages 1, 2 and 3 of ResNet).
- `block`: after a residual block's output (its final ReLU): non-local, GloRe, A²-Net.

Attention modules are registered under their own names (`attn`, `attn_conv1`, `attn_3x3`,
`attn_out`, `attn_layer1`, ...), so a backbone with attention still has every torchvision key
of the plain one, apart from `replace_3x3`, which removes the replaced conv and BN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attncc.diagnostics import HyperparameterError

SITES = ("branch", "conv", "after_3x3", "dw", "replace_3x3", "stage", "block")


@dataclass(frozen=True)
class Placement:
    """A site kind, and the stages (1-based) and block indices (negative: from the stage's
    end) that get a block; None: all of them.

    Example:
        >>> Placement("block", stages=(3,), blocks=(-2,))   # non-local on COCO: one in res4
        Placement(where='block', stages=(3,), blocks=(-2,))
    """

    where: str
    stages: tuple[int, ...] | None = None
    blocks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.where not in SITES:
            raise HyperparameterError(
                f"unknown placement `{self.where}`",
                hints=(f"placements: {', '.join(SITES)}",))

    def wants(self, where: str, stage: int, block: int, n_blocks: int) -> bool:
        if where != self.where or (self.stages is not None and stage not in self.stages):
            return False
        return self.blocks is None or any(b % n_blocks == block for b in self.blocks)


# the placement each paper uses, by bundled spec name; MobileNetV2 overrides in MOBILENET
PAPER_PLACEMENTS: dict[str, Placement] = {
    **{name: Placement("branch") for name in (
        "se", "eca", "cbam", "srm", "genet", "fcanet", "triplet", "gala", "gsop", "spnet",
        "coordatt", "scse")},
    "gct": Placement("conv"),
    "simam": Placement("after_3x3"),
    "sk": Placement("replace_3x3"),
    "scnet": Placement("replace_3x3"),
    "bam": Placement("stage", stages=(1, 2, 3)),
    "gc": Placement("branch", stages=(2, 3, 4)),
    # COCO: one block in res4, right before its last residual block
    "nonlocal": Placement("block", stages=(3,), blocks=(-2,)),
    "dnl": Placement("block", stages=(3,), blocks=(-2,)),
    "glore": Placement("block", stages=(2, 3), blocks=(-1,)),
    "a2net": Placement("block", stages=(3, 4), blocks=(-1,)),
}
MOBILENET_PLACEMENTS: dict[str, Placement] = {
    "coordatt": Placement("dw"),
    "simam": Placement("dw"),
}

Factory = Callable[[int, int, int], Any]  # (C, H, W) -> nn.Module


def spec_name(attention: Any) -> str | None:
    """The bundled name a spec reference stands for (`se`, `specs/se.attn` -> `se`)."""
    if isinstance(attention, Path):
        return attention.stem
    if isinstance(attention, str) and "{" not in attention and "\n" not in attention:
        return Path(attention).stem.lower()
    return None


def resolve(attention: Any, attention_args: Mapping[str, Any] | None,
            placement: str | Placement | None, net: str) -> tuple[Factory | None, Placement]:
    """The block factory and the placement for a backbone's `attention=` arguments."""
    args = dict(attention_args or {})
    if attention is None:
        if args:
            raise HyperparameterError("attention_args given without attention=")
        return None, Placement("branch")
    is_spec = isinstance(attention, (str, Path))
    if not is_spec and not callable(attention):
        raise HyperparameterError(
            f"attention= must be a spec name, a path or a module factory, not "
            f"{type(attention).__name__}")
    if is_spec:
        from attncc.compiler import read_source

        read_source(attention)  # an unknown name fails here, with a did-you-mean
    name = spec_name(attention)
    if placement is None:
        table = {**PAPER_PLACEMENTS, **(MOBILENET_PLACEMENTS if net == "mobilenet" else {})}
        if name not in table:
            raise HyperparameterError(
                f"no paper placement is known for `{name or attention}`",
                hints=("pass placement=, one of " + ", ".join(SITES),))
        place = table[name]
    else:
        place = placement if isinstance(placement, Placement) else Placement(placement)
    if not is_spec:
        return (lambda c, h, w: attention(c, **args)), place
    if "C" in args:
        raise HyperparameterError("attention_args must not set C: the backbone sets it per "
                                  "position")

    def make(c: int, h: int, w: int) -> Any:
        from attncc.api import compile as compile_spec

        # the example shape fixes C (and H, W for the blocks that fix them, as FcaNet)
        return compile_spec(attention, shapes={"x": (1, c, h, w)}, **args)

    return make, place


def conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1
