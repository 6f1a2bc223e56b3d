"""Configuration: the pydantic schema, loading with ROTATOR_* overrides, and the generated reference and Helm schema."""
