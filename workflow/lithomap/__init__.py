"""lithomap: unsupervised geological mapping from multispectral scenes."""

import os

# GDAL writes a .properties index beside every .gz it reads through
# /vsigzip/ or /vsitar/; product folders may be read-only or shared.
os.environ.setdefault("CPL_VSIL_GZIP_WRITE_PROPERTIES", "NO")

__version__ = "0.1.0"
