"""The device's core: bus, state, event store, commands, and the Feature/Host interfaces."""
