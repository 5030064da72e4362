"""Graphviz renderers: blocks, units and layers diagrams, the ControlNet pair, their layout and style."""
