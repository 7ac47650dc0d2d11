"""Where arrays live: the array registry, page residency and zero-copy checks.

These ask MLX and the operating system about memory (``move_pages(2)`` on
Linux) and return plain data (``unimem.model.memory``) that views draw.
"""
