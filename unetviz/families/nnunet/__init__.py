"""nnU-Net's networks (MIC-DKFZ's dynamic_network_architectures 0.4.4), traced from a plans configuration.

``config`` reads and checks the config (the allow-list of class names is ``ops``), ``blocks`` the building
blocks, ``unet`` the two U-Nets a plans file names: ``PlainConvUNet`` and ``ResidualEncoderUNet``.
"""
