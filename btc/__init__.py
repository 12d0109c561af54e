"""btc: brain-tumour MRI classification research toolkit."""

__version__ = "0.1.0"
