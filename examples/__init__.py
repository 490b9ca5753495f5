"""Examples of bringing your own use case to rtml (README "Bring your own use case")."""
