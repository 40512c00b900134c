"""From a suite to one trained run: the suite and its design, the grid, building components, the training loop and its
evaluations, the vectorised seed groups, checkpoints and pictures.
"""
