"""Behaviour stages built on the tracker: posture, zones, fetch, heat map and analytics (pure logic)."""
