"""Widgets: the timeline and the memory view, each a Python class plus one ES module.

Views format what they are handed (Recordings, registry snapshots) and never
call MLX. The ES modules live in the repository's ``widgets/`` folder and ship
in the wheel as ``unimem/_static``.
"""
