"""One file per architecture: its config, its modules and its task heads."""
