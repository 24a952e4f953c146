"""Automated checks of a proof's evidence: what the bytes are (media), content safety
(safety), the raw signals and their feature vector (signals), and the review-score model
(model, trained by train). Pure functions; the worker does the I/O."""
