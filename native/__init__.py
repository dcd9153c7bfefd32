"""Compiled kernels (Cython). Each module here has a pure-Python twin that tests compare it with."""
