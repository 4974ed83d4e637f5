"""The MQTT transport: the bus mirrored to a broker, Home Assistant discovery and commands over MQTT.

:mod:`.outbox` (which stored events go out, which are acknowledged) and :mod:`.connection` (the link's
states and what to do on each answer from the broker, with :mod:`.kickloop`) are pure logic; :mod:`.bridge`
is the thin paho-mqtt adapter that feeds them. Its parts, built by the device with what they need:
:mod:`.discovery` (Home Assistant, its entities described as data in :mod:`.ha`) and :mod:`.commands`.
"""

from edge.transports.mqtt.bridge import BridgePart, MqttBridge
from edge.transports.mqtt.commands import MqttCommands
from edge.transports.mqtt.discovery import HomeAssistantDiscovery

__all__ = ["BridgePart", "HomeAssistantDiscovery", "MqttBridge", "MqttCommands"]
