"""Tracing a live ``nn.Module``: recognise an upstream family, else observe one forward pass.

``trace_module(module, input=..., size=...)`` is what ``unetviz.trace(module)`` calls; ``observe`` is what
verification calls on the real model it builds. One module per concern:

* ``entry``: ``trace_module``, the choice between the symbolic shortcut and an observed pass;
* ``recognise``: which upstream family a module is, and its unetviz config;
* ``inputs``: the input a module runs with (a given tensor or shape, or ``size=`` at the module's rank),
  the meta-device copy, the shell an upstream adapter reads;
* ``assemble``: the hooked run (``capture.py``) and the ``Trace`` made from it;
* ``units``: which modules are units and block headings, and their records;
* ``skips``: which concat operands are popped skips (the pairing heuristic).
"""

from __future__ import annotations

from .assemble import build_trace, observe, sample_shape
from .entry import trace_module
from .inputs import module_inputs, on_meta, symbolic_shell
from .recognise import config_of, family_of
from .units import unit_paths

__all__ = ["build_trace", "config_of", "family_of", "module_inputs", "observe", "on_meta", "sample_shape",
           "symbolic_shell", "trace_module", "unit_paths"]
