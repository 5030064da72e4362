"""diffusers' U-Nets: UNet2DModel, UNet2DConditionModel and their blocks, ControlNet, 1-D, 3-D, motion and SVD."""
