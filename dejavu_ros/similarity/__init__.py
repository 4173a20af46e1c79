"""Similarity stage: contextual similarity (CX), the CX grid, and global descriptors."""
