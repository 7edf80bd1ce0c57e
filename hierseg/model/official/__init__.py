"""The official CAST parts (twke18/CAST): the conv stem with its position table, graph pooling, FPS."""
from .fps import farthest_point_sample
from .graph_pool import GraphPooling, GraphPoolingConfig
from .stem import ConvStem, ConvStemConfig

__all__ = ["ConvStem", "ConvStemConfig", "GraphPooling", "GraphPoolingConfig", "farthest_point_sample"]
