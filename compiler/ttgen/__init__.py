"""ttgen: a declarative model-graph compiler from Hugging Face PyTorch models to Tenstorrent TTNN."""

__version__ = "0.1.0"
