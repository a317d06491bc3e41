"""trainers package (grows with later work)."""
