"""FleetVision: car-listing photo understanding on Spark."""

__version__ = "0.1.0"
