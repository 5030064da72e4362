# ruff: noqa
# mypy: ignore-errors
# (a reproducer script kept as it was filed, not project code: the linters and mypy leave it alone)
"""Minimal reproducers of wrong answers of the live-module observer (`unetviz.trace(model, ...)`), found by
tracing MONAI, nnU-Net (dynamic_network_architectures) and segmentation_models_pytorch U-Nets and comparing
with torch's own figures and an independent torch.cat interception. Each function prints what unetviz says;
the comment above it says what the real model does. Pure torch: no third-party library needed.
Run: python observer_findings.py (in an environment with torch and unetviz)."""
import torch
from torch import nn

import unetviz


def r1_shared_params():
    # nnU-Net's ConvDropoutNormReLU registers its conv twice (self.conv and inside self.all_modules);
    # its UNetDecoder keeps a reference to the encoder; DynUNet's skip_layers re-registers every block.
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.all_modules = nn.Sequential(self.conv, nn.ReLU())

        def forward(self, x):
            return self.all_modules(x)

    m = Shared()
    t = unetviz.trace(m, input=(1, 3, 16, 16))
    print("R1 params: unetviz", t.params, "| torch", sum(p.numel() for p in m.parameters()))


def r2_3d_size():
    m = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1))
    for size in [(32, 48, 64), "32x48x64", (48, 64)]:
        try:
            print("R2 size", size, "-> traced", unetviz.trace(m, size=size).in_size)
        except unetviz.UnetvizError as e:  # a 2-number size for a Conv3d is refused, not made cubic
            print("R2 size", size, "-> refused:", e)
    print("R2 input=(1,1,32,48,64) -> traced", unetviz.trace(m, input=(1, 1, 32, 48, 64)).in_size)


def r3_side_skip(wrapped: bool):
    # SwinUNETR's decoder5 reads hidden_states_out[3], made by F.layer_norm inside swinViT and used by
    # nothing but the decoder: an encoder feature no other module took as input before the concat
    class Side(nn.Module):
        def __init__(self):
            super().__init__()
            conv = nn.Conv2d(3, 8, 3, padding=1)
            self.enc1 = nn.Sequential(conv) if wrapped else conv
            self.down = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.dec = nn.Conv2d(16, 2, 3, padding=1)

        def forward(self, x):
            e = self.enc1(x)
            y = self.up(self.down(x))
            return self.dec(torch.cat([y, e], 1))

    t = unetviz.trace(Side(), input=(1, 3, 16, 16))
    print(f"R3 side skip (enc1 wrapped in nn.Sequential: {wrapped}): skips={len(t.skips)};",
          [(o.channels, "skip" if o.skip is not None else "previous", o.source) for o in t.concats[0].inputs])


def r4_gated_skip():
    # MONAI AttentionUnet's AttentionLayer: cat((attention(g=fromlower, x=skip), fromlower))
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.psi = nn.Conv2d(8, 1, 1)

        def forward(self, g, x):
            return x * torch.sigmoid(self.psi(g))

    class AttU(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Conv2d(3, 8, 3, padding=1)
            self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.gate = Gate()
            self.out = nn.Conv2d(16, 2, 1)

        def forward(self, x):
            e = self.enc(x)                  # the encoder feature: the skip
            d = self.up(self.down(e))        # the decoder state
            return self.out(torch.cat([self.gate(d, e), d], 1))

    t = unetviz.trace(AttU(), input=(1, 3, 16, 16))
    print("R4 gated skip:", [(o.channels, "skip" if o.skip is not None else "previous", o.source)
                             for o in t.concats[0].inputs], "| skip source:", t.skips[0].source)


def r5_wrapper_unit():
    # MONAI UNet: the whole U is one nn.Sequential of nested SkipConnection(...)s
    class Skip(nn.Module):
        def __init__(self, sub):
            super().__init__()
            self.submodule = sub

        def forward(self, x):
            return torch.cat([x, self.submodule(x)], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1),
                                       Skip(nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ConvTranspose2d(16, 8, 2, 2))),
                                       nn.ConvTranspose2d(16, 2, 2, 2))

        def forward(self, x):
            return self.model(x)

    t = unetviz.trace(Net(), input=(1, 1, 16, 16))
    print("R5 units:", [(u.path, u.type) for u in t.units], "| concat placed before unit row:", t.concats[0].at,
          "> unit.first", t.units[0].first)


def r6_list_encoder():
    # nnU-Net's encoder / smp's encoders return the list of stage outputs
    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2, 1))

        def forward(self, x):
            out = []
            for s in self.stages:
                x = s(x)
                out.append(x)
            return out

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Enc()
            self.up = nn.ModuleList([nn.ConvTranspose2d(32, 16, 2, 2), nn.ConvTranspose2d(16, 8, 2, 2)])
            self.conv = nn.ModuleList([nn.Conv2d(32, 16, 3, 1, 1), nn.Conv2d(16, 8, 3, 1, 1)])

        def forward(self, x):
            f = self.encoder(x)
            y = f[-1]
            for i in range(2):
                y = self.conv[i](torch.cat([self.up[i](y), f[-2 - i]], 1))
            return y

    from unetviz.analysis.cost import size_cost
    t = unetviz.trace(Net(), input=(1, 1, 32, 32))
    u = t.units[0]
    print(f"R6 encoder unit: {u.path} {u.in_channels}->{u.out_channels} {u.in_size}->{u.out_size} (real: 1->32, 32x32->8x8);",
          "levels:", [(lv.level, lv.size, lv.macs) for lv in size_cost(t, "", None, 1, "fp32").levels])


def r7_r8_tokens():
    # UNETR's ViT: (B, N, C) token tensors; Swin: windows folded into the batch (B*nW, N, C)
    class Tok(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv3d(1, 64, 4, 4)
            self.blk = nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 64))

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)        # (1, 64 tokens... here 4*4*4=64, C=64)
            t = t.reshape(1, 64, 64)
            w = t.reshape(8, 8, 64)                              # 8 windows of 8 tokens
            return self.blk(w)

    m = Tok()
    t = unetviz.trace(m, input=(1, 1, 16, 16, 16))
    lin = next(x for x in t.layers if x.type == "Linear")
    from unetviz.core.quantities import layer_macs
    print("R7 unit channels of the token block:", [(u.path, u.in_channels, u.out_channels) for u in t.units],
          "| R8 Linear MACs: unetviz", layer_macs(lin), "real", 8 * 8 * 64 * 64)


def r12_paramfree_skip_source():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, 1, 1)
            self.act = nn.SiLU()                           # efficientnet's _swish: no parameters
            self.down = nn.Conv2d(8, 16, 3, 2, 1)
            self.up = nn.ConvTranspose2d(16, 8, 2, 2)
            self.out = nn.Conv2d(16, 2, 1)

        def forward(self, x):
            s = self.act(self.stem(x))
            return self.out(torch.cat([self.up(self.down(s)), s], 1))

    t = unetviz.trace(Net(), input=(1, 3, 16, 16))
    from unetviz.render.graph.draw import to_graphviz
    src = to_graphviz(t, "units").source
    print("R12 skips:", [(s.source, s.unit) for s in t.skips], "| skip edges drawn:", src.count("#0 "))


if __name__ == "__main__":
    r1_shared_params()
    r2_3d_size()
    r3_side_skip(False)
    r3_side_skip(True)
    r4_gated_skip()
    r5_wrapper_unit()
    r6_list_encoder()
    r7_r8_tokens()
    r12_paramfree_skip_source()
