"""The computed parts of the Chinese walkthrough, in Chinese: the skip explanation and the concat arithmetic are
written here from the records (not translated from the English sentences), the tables get Chinese headings.

Module paths, class names and numbers stay as they are: they are what a reader types and searches for.
"""

from __future__ import annotations

import re

import uvdocs

from unetviz.core.records import Concat, Trace, fmt_size

HEADINGS = {
    "#": "#", "path": "路径", "type": "类型", "channels": "通道", "size": "尺寸", "params": "参数", "MACs": "乘加",
    "out elems": "输出元素", "lora": "LoRA", "skip": "跨层", "note": "说明", "pushed by": "入栈者", "ch": "通道",
    "popped by": "出栈者", "tensor": "张量", "shape": "形状", "block": "块",
}


def _headings(text: str) -> str:
    """Each ``<th>`` of an English table in Chinese."""
    return re.sub(r"(<th[^>]*>)([^<]*)(</th>)", lambda m: m[1] + HEADINGS.get(m[2], m[2]) + m[3], text)


CELLS = (
    (r"(\d+) \(previous, ([^)]+)\)", r"\1(当前特征,来自 \2)"),
    (r"(\d+) \(skip #(\d+) from ([^,]+), ([^)]+)\)", r"\1(第 \2 号跨层特征,来自 \3,\4)"),
    (r"\bpop #(\d+)", r"弹出 #\1"), (r"\bpush #(\d+)", r"压入 #\1"),
    (r"(\d+) heads x (\d+) = (\d+), (\d+) block\(s\), expects a (\d+)-d context",
     r"\1 个头 x \2 = \3,\4 个 block,读入 \5 维的上下文"),
    (r"\+1x1 shortcut", "+1x1 卷积捷径"), (r"nearest x2", "最近邻插值 x2"), (r"cat -&gt; ", "拼接 -&gt; "),
    (r"\b(\d+) groups\b", r"\1 组"),
)
"""The unit table's notes (written by ``render.columns`` in English) as Chinese, pattern by pattern; a note no
pattern matches stays English, and the page's test names it."""


def table(name: str, block: str = "", depth: str = "units") -> str:
    text = _headings(uvdocs.table(name, block=block, depth=depth))
    for pattern, zh_text in CELLS:
        text = re.sub(pattern, zh_text, text)
    return text


def skip_table(name: str) -> str:
    return _headings(uvdocs.skip_table(name)).replace("(never popped)", "(从未出栈)")


def diagram(name: str, detail: str = "units") -> str:
    return uvdocs.diagram(name, detail=detail).replace("open the SVG at full size", "打开原尺寸的 SVG")


def concat_zh(t: Trace, c: Concat) -> str:
    """``2560 = 1280(当前特征,来自 mid_block.resnets.1)+ 1280(第 11 号跨层特征,来自 ..., 8x8)``."""
    parts = []
    for op in c.inputs:
        if op.skip is None:
            parts.append(f"{op.channels}(当前特征,来自 `{op.source}`)")
        else:
            s = t.skips[op.skip]
            parts.append(f"{op.channels}(第 {op.skip} 号跨层特征,来自 `{s.unit}`,{fmt_size(op.size)})")
    return f"{c.channels} = " + " + ".join(parts)


def explain(name: str) -> str:
    """How many skips each block pushes, and per decoder block the concats it feeds, as a Markdown list."""
    t = uvdocs.trace(name)
    pushed: dict[str, int] = {}
    for s in t.skips:
        block = next((b for b, _ in t.blocks if s.unit == b or s.unit.startswith(b + ".")), s.unit)
        pushed[block] = pushed.get(block, 0) + 1
    parts = ",".join(f"`{b}` {k} 个" for b, k in pushed.items())
    out = [f"- Encoder 一共压入 {len(t.skips)} 个跨层特征({parts});Decoder 后进先出地弹出它们,每次拼接用一个。"]
    by_block: dict[str, list[Concat]] = {}
    for c in t.concats:
        block = next((b for b, _ in t.blocks if c.consumer.startswith(b + ".")), c.consumer)
        by_block.setdefault(block, []).append(c)
    for block, cs in by_block.items():
        out.append(f"- `{block}` 弹出 {len(cs)} 个跨层特征,所以有 {len(cs)} 个以拼接结果为输入的层:")
        out += [f"    - {concat_zh(t, c)}" for c in cs]
    return "\n".join(out)


def terms(name: str) -> str:
    """Every concat of the model: consumer and arithmetic, a line each."""
    t = uvdocs.trace(name)
    return "\n".join(f"- `{c.consumer}`:{concat_zh(t, c)}" for c in t.concats)


CONTEXT = {"zh_table": table, "zh_skip_table": skip_table, "zh_diagram": diagram, "zh_explain": explain,
           "zh_terms": terms}
