"""What every Blueprint service needs, and nothing domain-specific."""
