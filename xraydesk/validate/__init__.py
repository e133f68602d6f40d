"""Site acceptance: how a model does on a site's own labelled images (``xraydesk validate``).

Qt-free. ``labels`` reads which image is which class (class subfolders or a CSV of path
and label, with a mapping from the site's label names to the model's classes);
``site_run`` classifies them through the batch engine, so every image gets the same
verdict as anywhere else; ``site_metrics`` turns the verdicts into the report's figures
(``xraydesk.trainer.metrics`` for the metrics and their intervals), ``compare`` sets them
beside the model card's; ``pdf`` draws the report with matplotlib (no Qt).
"""
