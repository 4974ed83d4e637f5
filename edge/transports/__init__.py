"""Transports: the ways messages leave the device (WebSocket hub, MQTT bridge)."""
