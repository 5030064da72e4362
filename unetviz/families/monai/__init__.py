"""MONAI's segmentation networks (``monai.networks.nets``, MONAI 1.6.1), traced from a bundle's ``network_def``.

``config`` reads and checks the config (the allow-list of class and layer names is ``ops``), ``blocks`` the
building blocks (``Convolution``, ``ResidualUnit``, norms, activations), and one module per network family:
``unet`` (``UNet``, ``AttentionUnet``), ``basic_unet`` (``BasicUNet``), ``dynunet`` (``DynUNet``), ``unetr``
(``UNETR``, on the ViT of ``vit``) and ``swin_unetr`` (``SwinUNETR``, on the Swin transformer of ``swin``).
``model.build`` dispatches on ``_target_``.
"""
