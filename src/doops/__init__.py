"""doops: operations and observability for the learnhub platform on DigitalOcean."""

__version__ = "0.1.0"
