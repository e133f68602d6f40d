"""Monitoring a deployment: per-day figures of the results database, their
Prometheus exposition and the drift check against the site's validation baseline.

Qt-free and torch-free: it only reads ``results.sqlite`` (the batch runs and the DICOM
node's worklist), so ``xraydesk monitor`` and the node's metrics endpoint cost no model.
"""
