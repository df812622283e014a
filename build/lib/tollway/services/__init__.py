"""Application services shared by the CLI and the control-plane API."""
