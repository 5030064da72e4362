"""The whole memory of one trace: weights beside the activations, for inference and for training (torch-free).

Conventions (the report's notes say the same in one line each):

- **Weights**: every parameter (``Trace.params``: the state_dict but its buffers, each tensor once) at the
  report's dtype. Buffers (a BatchNorm's running statistics, resampling kernels) are left out: they are small
  and not what ``--dtype`` sets.
- **Inference**: weights + the peak live activations of ``memory.peak_elements``, under both of its
  attention conventions (scores materialised; fused, memory-efficient attention).
- **Training** with AdamW, 16 bytes a parameter whatever the dtype: in fp32, weights 4 + gradients 4 + two
  fp32 moments 8; in fp16 / bf16 (mixed precision) the classic master-weights recipe (Micikevicius et al.,
  ZeRO's accounting): weights 2 + gradients 2 + fp32 master weights 4 + two fp32 moments 8. torch.amp's
  autocast (fp32 weights and gradients, half-precision copies made per op) totals the same 16 bytes.
  Then the activations autograd keeps for backward (``saved_elements``), at the report's batch and dtype.
  Transient buffers of the backward pass itself, the allocator's fragmentation and the CUDA context are not
  counted: the figure is what must fit, not what ``nvidia-smi`` shows.
- **Activations kept for backward** (an approximation from the records alone): every layer row's output (a
  conv or linear saves its input, which is the previous row's output; a norm saves its input; an in-place
  LeakyReLU, as nnU-Net's, saves the result that the next conv also saves; the model's outputs, which the
  loss keeps) but a row whose output only feeds a concat (nnU-Net's transposed convs: cat saves nothing),
  every concat's result (the decoder conv after it saves that new tensor), the model's input, and with
  scores materialised one
  score-sized tensor per attention (the softmax output that attn·v and the softmax backward keep; a fused
  kernel keeps only a per-row log-sum-exp, not counted). Out-of-place nonlinearities (SiLU, GELU in the
  diffusion U-Nets), residual sums and dropout masks are no rows: there the figure is a lower bound. Measured
  on a tiny real UNet2DConditionModel (``tests/test_cost_memory.py``): the fused figure is 74% of what autograd
  keeps with the CPU's flash kernel; the materialised one 90-96% with the math kernel, whose softmax copies
  dominate. The missing quarter: SiLU and GEGLU outputs, the residual and time-embedding sums the next norm
  saves, upsampled maps, ``proj_out``'s contiguous copy; less the row outputs that only a sum reads.
- **Deep supervision**: nnU-Net's trainer builds its network with deep supervision on (``enable_deep_supervision``
  in ``nnUNetTrainer``), so for an nnU-Net trace whose config does not set ``deep_supervision`` false the seg
  heads the inference trace left unrun (units of no layer) add their outputs to what training keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.quantities import ATTENTION_TYPES
from ..core.records import Trace, numel
from .memory import DTYPE_BYTES, Memory

MASTER_BYTES = 4
"""fp32 master weights under mixed precision (none in fp32: the weights are the master copy)."""
MOMENT_BYTES = 2 * 4
"""AdamW's two fp32 moments (exp_avg, exp_avg_sq) per parameter."""


@dataclass(frozen=True, kw_only=True)
class Footprint:
    """Weights, inference and training memory of one trace at a batch and dtype (see the module docstring)."""

    params: int
    """Parameters counted (``Trace.params``)."""
    weights: int
    """``params`` x bytes of the dtype."""
    inference: int
    """Weights + peak activations, attention scores materialised."""
    inference_efficient: int
    """Weights + peak activations, fused attention."""
    gradients: int
    """One gradient per parameter at the dtype."""
    master: int
    """fp32 master weights (mixed precision only; 0 in fp32)."""
    moments: int
    """AdamW's two fp32 moments."""
    saved: int
    """Activations kept for backward at the batch, scores materialised."""
    saved_efficient: int
    """Activations kept for backward at the batch, fused attention."""
    deep_supervision: int
    """Of ``saved``: the deep-supervision seg maps the inference trace did not run (nnU-Net), else 0."""

    @property
    def static(self) -> int:
        """What training holds whatever the input: weights, gradients, master weights, moments."""
        return self.weights + self.gradients + self.master + self.moments

    @property
    def training(self) -> int:
        """The training estimate, scores materialised: ``static`` + ``saved``."""
        return self.static + self.saved

    @property
    def training_efficient(self) -> int:
        """The training estimate with fused attention."""
        return self.static + self.saved_efficient


def deep_supervision_elements(t: Trace) -> int:
    """Elements at batch 1 of the seg heads training runs and this trace did not: an nnU-Net trace whose config
    leaves ``deep_supervision`` unset (the trainer's default, on) or sets it on; 0 for every other trace."""
    if t.family != "nnunet" or t.config.get("deep_supervision") is False:
        return 0
    # the unrun heads are the units of no layer (families/nnunet/unet.py); with deep supervision on there are none
    return sum(u.out_channels * numel(u.out_size) for u in t.units
               if u.first == u.last and u.out_size is not None and ".seg_layers." in f".{u.path}")


def saved_elements(t: Trace, materialised: bool) -> int:
    """Elements at batch 1 that autograd keeps for backward (the module docstring's approximation)."""
    out = t.in_channels * numel(t.in_size)
    # a tensor made only to be concatenated (nnU-Net's transposed conv output) is not saved: cat keeps nothing
    into_cat = {o.source for c in t.concats for o in c.inputs if o.skip is None}
    for x in t.layers:
        if x.path in into_cat:
            continue
        size = numel(x.out_size) if x.out_size is not None else (x.written_tokens or 1)
        out += x.out_channels * size * x.batch
        if materialised and x.type in ATTENTION_TYPES and x.type != "linear_attention":
            out += (x.heads or 1) * (x.tokens or 0) * (x.kv_tokens or 0) * x.batch
    out += sum(c.channels * numel(c.size) for c in t.concats)
    return out + deep_supervision_elements(t)


def footprint(t: Trace, memory: Memory) -> Footprint:
    """The footprint of ``t`` at ``memory``'s batch and dtype (its activation figures are reused)."""
    size = DTYPE_BYTES[memory.dtype]
    weights = t.params * size
    return Footprint(
        params=t.params, weights=weights, inference=weights + memory.peak_materialised,
        inference_efficient=weights + memory.peak_efficient, gradients=weights,
        master=0 if size == MASTER_BYTES else t.params * MASTER_BYTES, moments=t.params * MOMENT_BYTES,
        saved=saved_elements(t, True) * size * memory.batch,
        saved_efficient=saved_elements(t, False) * size * memory.batch,
        deep_supervision=deep_supervision_elements(t) * size * memory.batch)


def footprint_dict(f: Footprint) -> dict[str, int]:
    """``unetviz cost --format json``'s per-size fields of ``f``, in bytes."""
    return {"weights_bytes": f.weights, "inference_bytes": f.inference,
            "inference_memory_efficient_bytes": f.inference_efficient, "gradients_bytes": f.gradients,
            "master_weights_bytes": f.master, "optimizer_moments_bytes": f.moments,
            "saved_for_backward_bytes": f.saved, "saved_for_backward_memory_efficient_bytes": f.saved_efficient,
            "deep_supervision_bytes": f.deep_supervision, "training_bytes": f.training,
            "training_memory_efficient_bytes": f.training_efficient}
