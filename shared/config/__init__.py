"""Settings from the environment and the store → owner map (the configuration file joins them)."""
