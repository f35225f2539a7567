"""GPU drivers (drivers/gpu/)."""
