"""mmsgate: a self-hosted MMS gateway speaking the Sinch MMS JSON API (ep/v2)."""

__version__ = "0.1.0"
