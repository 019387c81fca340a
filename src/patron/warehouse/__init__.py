"""warehouse domain."""
