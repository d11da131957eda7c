"""Per-family benchmark rows: each module lists ``ROWS`` of (registry name, build kwargs, note)."""
