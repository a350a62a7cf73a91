"""Writes of the leads app, one module per sub-domain: capture (intake + matching), signals, edits."""
