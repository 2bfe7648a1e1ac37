"""What the rooms above share and the domain does not own: the address guard for fetches and postbacks,
HTTP answer helpers, waiting for work, and caches of account settings."""
