"""References: where they come from, which ones each scene uses, and their canvas."""
