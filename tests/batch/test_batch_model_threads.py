"""A batch starting never breaks a forward pass running in another thread.

The DICOM node's send thread computes a heat map (the classifier's forward pass) while its
classify thread starts the next group's batch run. The batch model used to fold batch norm
with torch.fx's ``fuse``, which traces the network, and tracing patches
``torch.nn.Module.__call__`` for the whole process while it runs: the other thread's
forward went through the tracer and failed with "NameError: module is not installed as a
submodule" (CI, twice: ``test_node_sends_results_past_hostile_headers``; found by the
node's ``exception_site``: ``fx/_symbolic_trace.py:535 in path_of_module``). The same
could hit the viewer's Grad-CAM beside the batch panel. The fold now needs no tracing."""

from __future__ import annotations

import copy
import threading

import numpy as np
import torch

from xraydesk.batch.batch_model import BatchModel
from xraydesk.classifier import Classifier
from xraydesk.model.resnet import ResNet, fold_batch_norms


def test_forward_passes_beside_batch_models_being_built(test_model_path):
    classifier = Classifier.load(test_model_path, device="cpu", runtime="torch")
    network = classifier.network
    x = torch.rand(1, classifier.card.preprocessing.channels, 64, 64)
    stop, errors = threading.Event(), []

    def forward_loop() -> None:
        while not stop.is_set():
            try:
                with torch.inference_mode():
                    network(x)
            except Exception as exc:  # the failure this test is for
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    thread = threading.Thread(target=forward_loop)
    thread.start()
    try:
        for _ in range(20):
            assert BatchModel(classifier).private  # folded, as before
    finally:
        stop.set()
        thread.join()
    assert errors == []


def test_folded_network_gives_the_same_outputs(test_model_path):
    classifier = Classifier.load(test_model_path, device="cpu", runtime="torch")
    network = classifier.network.eval()
    assert isinstance(network, ResNet)
    folded = fold_batch_norms(copy.deepcopy(network))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())  # a copy
    x = torch.rand(4, classifier.card.preprocessing.channels, 64, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(folded(x).numpy(), network(x).numpy(), atol=1e-4, rtol=1e-4)
