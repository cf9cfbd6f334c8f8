"""lithomap: unsupervised geological mapping from multispectral scenes."""

__version__ = "0.1.0"
