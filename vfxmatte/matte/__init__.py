"""matte stage."""
