"""matmcl: multimodal learning from incomplete lab data of electrospun nanofiber mats."""

__version__ = "0.1.0"
