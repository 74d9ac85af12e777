"""spectro: classify signals through their STFT time-frequency images."""

__version__ = "0.1.0"
