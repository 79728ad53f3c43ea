"""What generation takes (requests) and returns (typed artifacts)."""
