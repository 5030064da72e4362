"""Figures computed from traces (torch-free): cost and memory, diffs, a ControlNet paired with its base."""
