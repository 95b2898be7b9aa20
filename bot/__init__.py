"""Labrador's pull-request bot: webhook app, durable job queue, forge client, comment rendering.

Layering (edges outside, pure logic inside):

- ``webhook`` (HTTP in) -> ``routing`` (pure: event -> jobs) -> ``queue`` (huey + ``state``)
- ``worker`` -> ``runner`` (deadline, heartbeats, orphan sweep) -> ``handlers`` (job logic)
- ``handlers`` use ``forge`` (the GitHub interface; ``github`` implements it), ``validators.commits`` (which
  leaves changed) and ``checking`` (validators on git blobs), ``render`` (pure Markdown), ``preview`` (the teacher).
"""
