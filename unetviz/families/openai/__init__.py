"""OpenAI's UNetModel lineage: improved/guided-diffusion (``guided``) and CompVis/Stability's ``ldm``/``sgm``."""
