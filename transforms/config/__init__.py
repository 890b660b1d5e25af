"""Configuration: settings, bureau dataset contracts, limits, the county clock."""
