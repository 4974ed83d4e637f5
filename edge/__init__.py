"""dogmonitor: watch a dog with a camera on an edge device and tell the household in real time."""

__version__ = "0.1.0"
