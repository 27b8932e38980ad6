"""Base images: how each FROM resolves, and locally built stand-ins."""
