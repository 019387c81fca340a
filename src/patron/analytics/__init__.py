"""analytics domain."""
