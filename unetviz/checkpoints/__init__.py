"""Weights files, read from their headers only (never the data, never a pickle).

``header`` (names, shapes, metadata), ``kinds`` (what a file is: one ``Kind`` record per kind and its reader in
``addons``/``network``), ``bases`` (the base models by their widths), ``lora`` (LoRA-style key grammars),
``parts`` (a checkpoint's VAE, encoders, EMA copy, schedule, markers), ``inspect`` (a U-Net's config from
shapes), ``controlnet`` (a ControlNet's config, its cldm names), ``compare`` and ``check`` (a file against a
model's manifest in each naming), ``naming`` and ``keymaps`` (the original ldm/sgm naming, LoRA block ids).
"""
