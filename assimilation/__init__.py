"""Data assimilation: the analysis (``filters``), the observations (``observations``) and the comparison
downscaling methods (``downscaling``)."""
