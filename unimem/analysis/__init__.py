"""Questions asked of captured data: critical paths and waits, diffs, the copy tax.

Modules here read the model (Recordings, Graphs) and never call MLX, so they
answer the same for a live run and for a trace loaded from a file.
"""
