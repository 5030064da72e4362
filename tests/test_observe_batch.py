"""An observed trace is a sample's figures whatever batch the module is fed: torch's FlopCounterMode counts
the whole batch, so the attention matmul rows (SDPA, and the baddbmm/bmm of IF's added-KV attention, whose
leading dim is batch x heads) hold one sample's MACs, as the Linear and conv rows do."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import unetviz  # noqa: E402
from unetviz.core.quantities import layer_macs  # noqa: E402


def _observed(preset: str, batch: int) -> tuple[unetviz.Trace, unetviz.Trace]:
    """(the symbolic trace, the real model observed with the adapter's inputs repeated to ``batch`` samples)."""
    from test_out_tokens import real_model

    ours, model, args, kw = real_model(preset, None)

    def rebatch(x: object) -> object:
        if isinstance(x, torch.Tensor) and x.dim() >= 1:
            one = x[:1]
            return one.expand(batch, *one.shape[1:]) if x.dim() > 1 else one.repeat(batch)
        return x

    args = tuple(rebatch(a) for a in args)
    kw = {k: rebatch(v) for k, v in kw.items()}
    return ours, unetviz.trace(model, input=args, observe_only=True, **kw)


@pytest.mark.parametrize("preset", ["sd15", "if-i-xl"])  # SDPA; IF's added-KV attention (baddbmm)
@pytest.mark.parametrize("batch", [1, 3])
def test_observed_macs_are_one_samples_at_any_batch(preset: str, batch: int) -> None:
    ours, seen = _observed(preset, batch)
    attention = [x for x in seen.layers if x.type == "attention"]
    assert attention and seen.macs == ours.macs
    by_path: dict[str, int] = {}
    for x in ours.layers:
        if x.params == 0 and x.type.endswith("attention"):
            by_path[x.path] = by_path.get(x.path, 0) + layer_macs(x)
    seen_by_path: dict[str, int] = {}
    for x in attention:
        seen_by_path[x.path] = seen_by_path.get(x.path, 0) + layer_macs(x)
    assert seen_by_path == by_path
