"""flow=inductor: torch.compile with the Inductor backend. The Flow class is in flow.py, its config
dataclass in config.py."""
