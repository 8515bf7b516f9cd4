"""The gateway: forwarding requests upstream, the header rules it applies, the WebSocket pump."""
