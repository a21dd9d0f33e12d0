"""Train a compiled spatial attention block on a synthetic task and look at what it attends to.

Untrained attention maps are noise. This example makes a small image classification task on
the fly: one of four shapes (square, ring, cross, triangle outlines, 10-13 px) pasted at a
random position on a 40x40 textured background with clutter around it: 12-18 fragments of
smaller outlines of all four shapes, in colours drawn from the same distribution as the
object's. The clutter carries evidence for every class, so a network that pools over the whole
image is misled unless it finds the object. A small CNN classifies the shape:

    stem (3 conv layers, the second with stride 2)  ->  compiled attention block
        ->  pooling over space  ->  linear

The attention block is compiled from a spec (`cbam` by default, any other with a spatial map
by `--spec`) with `attncc.compile(spec, example=features)`, which reads the channel count
from an example feature map; its spatial map comes from `forward(..., return_attention=True)`.
The head pools the block's output (`--pool`): `gated` (the default) divides its spatial mean
by the spatial map's mean, which for a gate in (0, 1) such as CBAM's is the gate-weighted
average of the features, so only the map's contrast matters and clutter let through always
dilutes the object; `mean` is the plain global average, under which a sigmoid gate can leave
the clutter at about 0.5 and still classify well (the README gives both runs' numbers).
Either way the block's map is the network's only means of spatial selection. `gated` suits
blocks whose output is the features times the map (CBAM); for one with another path to its
output (scSE's channel branch, GC's added context) use `--pool mean`.

After training, on held-out images, the script measures the share of the spatial attention
map's mass that lies inside the object's bounding box, next to the box's share of the image
area (what a uniform map would score), prints both with the test accuracy and the map's mean
value inside and outside the boxes, and writes a PNG grid of held-out inputs with their
attention maps overlaid (each map scaled to its own range) and the box outlined in cyan.

    python examples/train_synthetic.py                      # CBAM, 2 CPU threads
    python examples/train_synthetic.py --pool mean          # the plain global average
    python examples/train_synthetic.py --spec scse --pool mean   # another spec
    python examples/train_synthetic.py --steps 20 --size small --out /tmp/a.png  # smoke run

Everything is seeded: the same arguments give the same numbers (on the same torch build and
thread count). The PNG is written with zlib alone (no matplotlib or Pillow needed).
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual name

import attncc

CLASSES = ("square", "ring", "cross", "triangle")


@dataclass(frozen=True)
class Size:
    image: int  # image side in pixels
    obj: tuple[int, int]  # object side, min and max
    fragments: tuple[int, int]  # clutter fragments per image, min and max
    fragment: int  # fragment side
    frag_from: tuple[int, int]  # sides of the (thinner-stroked) outlines fragments are cut from
    width: int  # channels of the feature map the attention block sees
    depth: int  # conv layers before the attention block (the second has stride 2)
    train: int
    test: int
    steps: int


SIZES = {
    "full": Size(image=40, obj=(10, 13), fragments=(12, 18), fragment=5,
                 frag_from=(6, 8), width=32, depth=3, train=8000, test=1000, steps=1000),
    "small": Size(image=24, obj=(7, 8), fragments=(3, 5), fragment=4,
                  frag_from=(4, 5), width=16, depth=3, train=256,
                  test=64, steps=20),
}


# ---- the data ----
def stamp(cls: int, s: int) -> np.ndarray:
    """A class's shape outline as an s×s mask (stroke about s/6 px)."""
    t = max(1.0, s / 6)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64) + 0.5
    c = s / 2
    if cls == 0:  # square
        edge = np.minimum(np.minimum(xx, s - xx), np.minimum(yy, s - yy))
        m = edge <= t
    elif cls == 1:  # ring
        r = np.hypot(xx - c, yy - c)
        m = np.abs(r - (s / 2 - t / 2)) <= t / 2 + 0.25
    elif cls == 2:  # cross
        m = (np.abs(xx - c) <= t / 2 + 0.25) | (np.abs(yy - c) <= t / 2 + 0.25)
    else:  # triangle: apex at the top, base at the bottom
        # distance to the three edges of the triangle (0, s) - (s, s) - (s/2, 0)
        n1 = np.array([2.0, 1.0]) / math.sqrt(5)   # left edge normal (pointing inward)
        n2 = np.array([-2.0, 1.0]) / math.sqrt(5)  # right edge normal
        d1 = (xx - c) * n1[0] + yy * n1[1]
        d2 = (xx - c) * n2[0] + yy * n2[1]
        d3 = s - yy
        inside = (d1 >= 0) & (d2 >= 0) & (d3 >= 0)
        m = inside & (np.minimum(np.minimum(d1, d2), d3) <= t)
    return m.astype(np.float32)


def smooth_noise(rng: np.random.Generator, n: int, side: int, cell: int) -> np.ndarray:
    """Low-frequency colour texture: coarse random grids, bilinearly upsampled."""
    coarse = torch.from_numpy(rng.standard_normal((n, 3, cell, cell)).astype(np.float32))
    return F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False).numpy()


def make_split(rng: np.random.Generator, size: Size, n: int):
    """n images [n, 3, S, S] in [0, 1], labels [n] and object boxes [n, 4] (y0, x0, y1, x1)."""
    side = size.image
    stamps = {(c, s): stamp(c, s) for c in range(len(CLASSES))
              for s in range(min(size.obj[0], size.frag_from[0]), size.obj[1] + 1)}
    images = 0.45 + 0.12 * smooth_noise(rng, n, side, 4) + 0.05 * smooth_noise(rng, n, side, 10)
    labels = rng.integers(0, len(CLASSES), n)
    boxes = np.zeros((n, 4), dtype=np.int64)
    f = size.fragment
    for i in range(n):
        img = images[i]
        s = int(rng.integers(size.obj[0], size.obj[1] + 1))
        oy, ox = (int(v) for v in rng.integers(0, side - s + 1, 2))
        # clutter: fragments of every class's outline, in object-like colours, around the object
        for _ in range(rng.integers(size.fragments[0], size.fragments[1] + 1)):
            fs = int(rng.integers(size.frag_from[0], size.frag_from[1] + 1))
            src = stamps[(int(rng.integers(len(CLASSES))), fs)]
            for _try in range(10):
                cy, cx = rng.integers(0, fs - f + 1, 2)
                piece = src[cy:cy + f, cx:cx + f]
                if piece.sum() >= f:
                    break
            for _try in range(20):
                y, x = (int(v) for v in rng.integers(0, side - f + 1, 2))
                if y + f <= oy - 1 or y >= oy + s + 1 or x + f <= ox - 1 or x >= ox + s + 1:
                    break
            else:
                continue
            colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
            img[:, y:y + f, x:x + f] = (img[:, y:y + f, x:x + f] * (1 - piece)
                                        + colour[:, None, None] * piece)
        m = stamps[(int(labels[i]), s)]
        colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
        img[:, oy:oy + s, ox:ox + s] = (img[:, oy:oy + s, ox:ox + s] * (1 - m)
                                        + colour[:, None, None] * m)
        ys, xs = np.nonzero(m)
        boxes[i] = (oy + ys.min(), ox + xs.min(), oy + ys.max() + 1, ox + xs.max() + 1)
    images = np.clip(images + 0.03 * rng.standard_normal(images.shape), 0, 1)
    return (torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels),
            torch.from_numpy(boxes))


# ---- the network ----
def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def spatial_map_name(block: nn.Module) -> str:
    """The first attention map of the block that spans the input's two spatial dims."""
    ir = block.ir
    _, _, h, w = ir.node(ir.inputs[0]).out.dims
    for name, nid in ir.attention.items():
        dims = ir.node(nid).out.dims
        if h in dims and w in dims:
            return name
    raise SystemExit(f"error: block `{ir.block}` has no attention map over {h} and {w} "
                     f"(its maps: {', '.join(ir.attention) or 'none'}); pick a spec with a "
                     f"spatial map, such as cbam, gc, scse or triplet")


class Net(nn.Module):
    def __init__(self, spec: str, width: int, depth: int, hyper: dict, seed: int,
                 pool: str = "mean") -> None:
        super().__init__()
        self.pool = pool
        self.stem = nn.Sequential(conv_bn(3, width // 2), conv_bn(width // 2, width, 2),
                                  *(conv_bn(width, width) for _ in range(depth - 2)))
        example = torch.zeros(2, width, 8, 8)  # sets C; batch and spatial dims stay free
        self.block = attncc.compile(spec, example=example, seed=seed, **hyper)
        ir = self.block.ir
        if len(ir.inputs) != 1 or len(ir.node(ir.inputs[0]).out.dims) != 4:
            raise SystemExit(f"error: this example needs a block with one input [N, C, H, W]; "
                             f"`{ir.block}` takes "
                             + ", ".join(str(ir.node(n).out) for n in ir.inputs))
        self.map_name = spatial_map_name(self.block)
        self.head = nn.Linear(width, len(CLASSES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [N, classes] and the spatial attention map [N, h, w]."""
        y, maps = self.block(self.stem(x), return_attention=True)
        if isinstance(y, tuple):
            y = y[0]
        a = spatial(self.block, self.map_name, maps)
        pooled = y.mean((2, 3))
        if self.pool == "gated":  # the gate-weighted average of the features
            pooled = pooled / a.mean((1, 2)).clamp_min(1e-6)[:, None]
        return self.head(pooled), a


def spatial(block: nn.Module, name: str, maps: dict[str, torch.Tensor]) -> torch.Tensor:
    """The attention map `name` as [N, H, W]: other dims (channels, heads) averaged out."""
    ir = block.ir
    n, _, h, w = ir.node(ir.inputs[0]).out.dims
    a = maps[name]
    dims = list(ir.node(ir.attention[name]).out.dims)
    order = [dims.index(d) for d in (n, h, w)]
    rest = [i for i in range(a.dim()) if i not in order]
    a = a.permute(*order, *rest)
    return a.reshape(*a.shape[:3], -1).mean(-1) if rest else a


# ---- measuring ----
def box_masks(boxes: torch.Tensor, side: int) -> torch.Tensor:
    r = torch.arange(side)
    inside_y = (r[None, :] >= boxes[:, 0:1]) & (r[None, :] < boxes[:, 2:3])
    inside_x = (r[None, :] >= boxes[:, 1:2]) & (r[None, :] < boxes[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :]).float()


@dataclass(frozen=True)
class Scores:
    accuracy: float
    mass: float  # mean share of the map's mass inside the object's box
    share: float  # mean share of the image area the box covers
    mean_in: float  # the map's mean value inside the boxes
    mean_out: float  # and outside


@torch.no_grad()
def evaluate(net: Net, images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor):
    """Scores on held-out images, and their spatial attention maps [N, h, w]."""
    net.eval()
    logits, maps = [], []
    for i in range(0, len(images), 250):
        lo, a = net(images[i:i + 250])
        logits.append(lo)
        maps.append(a)
    logits, a = torch.cat(logits), torch.cat(maps)
    side = images.shape[-1]
    # each map cell covers the image pixels it was computed from (nearest upsampling)
    up = F.interpolate(a[:, None].float(), size=(side, side), mode="nearest")[:, 0]
    inside = box_masks(boxes, side)
    mass = (up * inside).sum((1, 2)) / up.sum((1, 2)).clamp_min(1e-12)
    share = inside.sum((1, 2)) / side**2
    acc = (logits.argmax(1) == labels).float().mean().item()
    mean_in = ((up * inside).sum() / inside.sum()).item()
    mean_out = ((up * (1 - inside)).sum() / (1 - inside).sum()).item()
    return Scores(acc, mass.mean().item(), share.mean().item(), mean_in, mean_out), a


# ---- the picture ----
def colormap(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB in [0, 1] along a dark-blue / red / yellow ramp."""
    anchors = np.array([[0.05, 0.03, 0.25], [0.45, 0.05, 0.55], [0.90, 0.25, 0.20],
                        [1.00, 0.85, 0.20], [1.00, 1.00, 0.85]])
    x = np.clip(v, 0, 1) * (len(anchors) - 1)
    i = np.minimum(x.astype(int), len(anchors) - 2)
    t = (x - i)[..., None]
    return anchors[i] * (1 - t) + anchors[i + 1] * t


def overlay_grid(images: torch.Tensor, maps: torch.Tensor, boxes: torch.Tensor,
                 cols: int = 4, scale: int = 3) -> np.ndarray:
    """An RGB uint8 grid: per example the input and, beside it, the map over a grey copy."""
    n, _, side, _ = images.shape
    big = side * scale
    gap = 4
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (big + gap) + gap, cols * (2 * big + gap + 2 * gap) + gap, 3))
    for k in range(n):
        img = images[k].permute(1, 2, 0).numpy()
        img = img.repeat(scale, 0).repeat(scale, 1)
        a = F.interpolate(maps[k][None, None].float(), size=(big, big), mode="bilinear",
                          align_corners=False)[0, 0].numpy()
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
        grey = img.mean(-1, keepdims=True)
        over = 0.35 * grey + 0.65 * colormap(a)
        y0, x0, y1, x1 = (int(v) * scale for v in boxes[k])
        for pic in (over,):  # the box outline in cyan on the overlay
            pic[y0:y1, [x0, x1 - 1]] = (0.2, 1.0, 1.0)
            pic[[y0, y1 - 1], x0:x1] = (0.2, 1.0, 1.0)
        r, c = divmod(k, cols)
        top = gap + r * (big + gap)
        left = gap + c * (2 * big + 3 * gap)
        grid[top:top + big, left:left + big] = img
        grid[top:top + big, left + big + gap:left + 2 * big + gap] = over
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """A minimal 8-bit RGB PNG writer (zlib, no filters), written atomically."""
    h, w, _ = rgb.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)


# ---- the run ----
def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set takes K=V, got `{item}`")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = {"true": True, "false": False}.get(v.lower(), v)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="cbam", help="spec name or path (default: cbam)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="a hyperparameter of the block (repeatable)")
    ap.add_argument("--size", choices=sorted(SIZES), default="full",
                    help="problem size: full (the README's run) or small (a smoke test)")
    ap.add_argument("--steps", type=int, help="training steps (default: by --size)")
    ap.add_argument("--pool", choices=("gated", "mean"), default="gated",
                    help="the head's pooling of the block's output: gated (default): its mean "
                         "over space divided by the spatial map's mean, i.e. the gate-weighted "
                         "average of the features; mean: its plain mean over space")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--out", type=Path, default=Path("build/train_synthetic/attention.png"),
                    help="the PNG grid to write")
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    steps = args.steps if args.steps is not None else size.steps

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    train = make_split(rng, size, size.train)
    test = make_split(rng, size, size.test)
    try:
        net = Net(args.spec, size.width, size.depth, parse_set(args.set), args.seed,
                  args.pool)
    except attncc.AttnccError as err:
        print(err.render(), file=sys.stderr)
        return 1
    print(f"task: {len(CLASSES)} shapes on {size.image}x{size.image} clutter, "
          f"{size.train} training / {size.test} held-out images; block {net.block.ir.block} "
          f"({args.spec}), spatial map `{net.map_name}`")
    untrained, _ = evaluate(net, *test)

    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(steps, 2),
                                                pct_start=0.15)
    g = torch.Generator().manual_seed(args.seed)
    images, labels, _ = train
    report = max(1, steps // 5)
    for step in range(1, steps + 1):
        net.train()
        idx = torch.randint(0, len(images), (args.batch,), generator=g)
        x = images[idx]
        flip = torch.rand(args.batch, generator=g) < 0.5  # every shape is mirror-symmetric
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        logits, _ = net(x)
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % report == 0 or step == steps:
            print(f"step {step:4d}/{steps}  loss {loss.item():.3f}  "
                  f"({time.perf_counter() - t0:.0f} s)")

    s, maps = evaluate(net, *test)
    k = 16 if size.image >= 32 else 8
    write_png(args.out, overlay_grid(test[0][:k], maps[:k], test[2][:k]))
    elapsed = time.perf_counter() - t0
    print(f"test accuracy: {s.accuracy:.1%} (chance {1 / len(CLASSES):.0%})")
    print(f"attention mass inside the object's box: {s.mass:.1%} "
          f"(untrained: {untrained.mass:.1%})")
    print(f"box share of the image area: {s.share:.1%}  (mass / share = {s.mass / s.share:.2f}x)")
    print(f"mean attention value: {s.mean_in:.3f} inside the boxes, {s.mean_out:.3f} outside "
          f"(untrained: {untrained.mean_in:.3f}, {untrained.mean_out:.3f})")
    print(f"wrote {args.out}  ({elapsed:.0f} s, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
