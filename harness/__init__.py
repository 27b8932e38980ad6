"""Build every Dockerfile variant of an app, measure each image, compare them."""

__version__ = "0.1.0"
