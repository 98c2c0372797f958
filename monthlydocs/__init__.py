"""monthlydocs: collect clients' documents every month, without chasing."""

__version__ = "0.1.0"
