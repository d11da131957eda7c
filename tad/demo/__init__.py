"""`tad demo`: a synthetic untrimmed-video dataset and the whole pipeline on it."""
