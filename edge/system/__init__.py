"""The service manager side: systemd notify/watchdog and the diagnostics script."""
