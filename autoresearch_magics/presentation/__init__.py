"""Layer 2: text, tables, plots and widgets built from core data. No git, no processes."""
