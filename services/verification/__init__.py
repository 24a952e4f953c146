"""Automated checks of a proof's evidence: content safety (safety), the raw signals and their
feature vector (signals), and the review-score model (model, trained by train); what the bytes
are is ``core.media`` (the upload checks them the same way). Pure functions; the worker
(consumers) does the I/O."""
