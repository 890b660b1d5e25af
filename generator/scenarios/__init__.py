"""Risk warnings: the rules' ground truth, the planted cases and near misses, the later days."""
