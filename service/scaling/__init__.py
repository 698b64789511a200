"""The pure numerical core: laws, fitting, allocation and experiment design.

numpy/scipy only: nothing here imports the web framework, the database or does I/O.
"""
