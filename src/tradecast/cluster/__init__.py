"""Running several replicas: the loop lease and the health of shared services."""
