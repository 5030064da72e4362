"""The headline command as a person sees it: a real pseudo-terminal at 80 and 100 columns."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest


def in_terminal(args: list[str], columns: int, rows: int = 50) -> str:
    """Run ``python -m unetviz ARGS`` on a pty of the given size; its screen output without colours."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    p = subprocess.Popen([sys.executable, "-m", "unetviz", *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=60)
    os.close(master)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace"))


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("depth", [[], ["--depth", "units"], ["--depth", "blocks"]])
def test_sd15_fits_the_terminal_with_nothing_cut(columns: int, depth: list[str]) -> None:
    text = in_terminal(["table", "--preset", "sd15", *depth], columns)
    lines = text.replace("\r", "").splitlines()
    assert "\u2026" not in text  # rich's ellipsis: a path or a number was cut
    assert max(len(line) for line in lines) <= columns
    assert "2560" in text and "1920" in text
    if depth != ["--depth", "blocks"]:
        assert "1920 = 1280 (previous, up_blocks.1.attentions.1) + 640 (skip #6 from" in " ".join(lines)
        assert "859,520,964 params in 686 tensors" in text


def test_layers_depth_fits_80_columns() -> None:
    text = in_terminal(["table", "sdxl", "--depth", "layers"], 80, rows=60)
    lines = text.replace("\r", "").splitlines()
    assert "\u2026" not in text and max(len(line) for line in lines) <= 80
    assert "transformer_blocks.9.attn2.to_k" in text  # a deep path, whole


def _safetensors(path: str) -> None:
    """A safetensors file of SD 1.5's U-Net keys and shapes (header only matters; the data is zeros)."""
    import json

    import unetviz

    header: dict[str, object] = {}
    offset = 0
    for key, shape in unetviz.weights("sd15").tensors.items():
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset]}
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)


EVERY_COMMAND = [["table", "sdxl", "--depth", "layers"], ["table", "sd15", "--depth", "blocks"], ["weights", "sdxl"],
                 ["keymap", "sdxl"], ["presets"], ["cost", "sdxl"], ["cost", "nnunet-lung-3d-fullres"],
                 ["diff", "sd15", "sdxl"], ["inspect", "{file}"], ["verify", "ddpm-cifar10"], ["fit", "sd15", "{file}"],
                 ["why", "mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320)"]]


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: "-".join(c[:2]).strip("{}"))
def test_every_command_fits_the_terminal(columns: int, command: list[str]) -> None:
    import tempfile

    if command[0] == "verify":
        pytest.importorskip("torch")
    # a short path: a file name longer than the terminal cannot fit, whatever prints it
    file = os.path.join(tempfile.mkdtemp(prefix="uv"), "unet.safetensors")
    _safetensors(file)
    text = in_terminal([c.replace("{file}", file) for c in command], columns, rows=60)
    lines = text.replace("\r", "").splitlines()
    assert "\u2026" not in text, command  # rich's ellipsis: something was cut
    assert max(len(line) for line in lines) <= columns, [line for line in lines if len(line) > columns][:3]
    if command[0] in ("weights", "keymap"):
        import unetviz

        keys = unetviz.weights(command[1]).tensors
        words = {w for line in lines for w in line.split()}
        assert all(k in words for k in keys)  # every state_dict key whole on one line
