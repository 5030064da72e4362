"""The pure records every other part shares: errors, unit kinds, trace records, per-layer quantities, configs."""
