"""Pages and files the gateway serves besides the API: inbound content, the sandbox's handsets."""
