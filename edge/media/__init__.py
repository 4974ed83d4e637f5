"""Snapshots, clips with pre-roll, bookmarks, the media index, retention and the live view.

Pure logic lives in :mod:`ring`, :mod:`planner`, :mod:`retention` and :mod:`render`; file and SQL
I/O in :mod:`index` and :mod:`writer`; the live WebSocket in :mod:`live`; :mod:`feature` wires it
all into the device.
"""
