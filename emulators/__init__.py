"""Loopback emulators of the services Retouch talks to, for tests and benchmarks: ``emulators.discord``
(REST, gateway, CDN) and ``emulators.modelhub`` (the IONOS AI Model Hub).  Nothing here talks to
anything but 127.0.0.1."""
