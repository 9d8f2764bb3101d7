"""Layer 1: the campaign engine. Pure Python; nothing here imports Jupyter."""
