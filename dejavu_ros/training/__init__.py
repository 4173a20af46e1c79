"""Training stage: manifests, triplet sampling, the contextual triplet loss and the DDP trainer."""
