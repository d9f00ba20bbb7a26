"""Reference models of the papers this library implements."""

__all__ = []
