"""panoptic stage."""
