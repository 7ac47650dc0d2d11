"""Placing any code: rules over modules, regions, ops and lines, applied while it runs.

``rules.py`` parses and matches rules (plain data); ``plan.py`` applies them to
running MLX code, through the wrappers and stream switches of ``hooks.py``;
``groups.py`` finds what can be placed as one thing, by tracing;
``autoplace`` (a front door, ``unimem/autoplace.py``) measures and chooses.
"""
