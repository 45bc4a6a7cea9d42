"""What the terminal under test talks to or suffers: plant, meters, platforms, faults, clock."""
