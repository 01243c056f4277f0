"""Printers: one class per target (text, LaTeX, MathML, NumPy), one method per node class."""
