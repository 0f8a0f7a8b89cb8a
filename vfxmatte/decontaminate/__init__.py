"""decontaminate stage."""
