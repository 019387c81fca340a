"""console domain."""
