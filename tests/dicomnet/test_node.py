"""How the node's classify thread groups what it received (``StorageNode._classify_loop``).

Real network: a pynetdicom sender C-STOREs generated radiographs to a ``StorageNode``
on loopback, and the node classifies them with the small test model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation as DX_STORAGE

from tests.dicom_factory import make_dicom
from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist
from xraydesk.dicomnet.node import whole_batches
from xraydesk.dicomnet.worklist import CLASSIFIED

NODE_AET = "XRAYDESK"
SENDER = "SENDER"
BATCH = 4


class HeldNode(StorageNode):
    """The node as shipped, noting each group's size; its first group waits until the
    test lets it go, so the next files queue up behind it as behind a busy classifier."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.groups: list[int] = []
        self.first_taken = threading.Event()
        self.go_on = threading.Event()

    def classify_group(self, group: list) -> None:
        self.groups.append(len(group))
        if len(self.groups) == 1:
            self.first_taken.set()
            assert self.go_on.wait(30)
        super().classify_group(group)


def test_a_group_over_one_batch_is_classified_in_whole_batches(
    test_classifier, tmp_path: Path
) -> None:
    """Nine files queued behind a busy classifier at batch 4: on torch (the test model has
    no exported runtime) the engine pads a run's last batch once it has run a full one,
    so one group of nine cost the network 12 images; the node takes 8 and then the one
    left, unpadded, and every row is classified."""
    rng = np.random.default_rng(5)
    files = [
        make_dicom(tmp_path / f"{k}.dcm", rng.integers(0, 4096, (64, 64), dtype=np.uint16))
        for k in range(10)
    ]
    sender = AE(ae_title=SENDER)
    sender.add_requested_context(DX_STORAGE, [ExplicitVRLittleEndian])
    config = NodeConfig(ae_title=NODE_AET, port=0, allowed_ae_titles=(SENDER,))
    with HeldNode(config, test_classifier, batch_size=BATCH) as node:
        assoc = sender.associate("127.0.0.1", node.port, ae_title=NODE_AET)
        assert assoc.is_established
        try:
            assert assoc.send_c_store(files[0]).Status == 0x0000
            assert node.first_taken.wait(30)  # the classify thread holds the first file
            for path in files[1:]:
                assert assoc.send_c_store(path).Status == 0x0000
        finally:
            assoc.release()
        node.go_on.set()
        assert node.wait_idle(60)
        assert node.groups == [1, 8, 1]
    with Worklist() as worklist:
        assert worklist.count(CLASSIFIED) == 10
        assert all(item.prediction or item.indeterminate for item in worklist.items())


def test_whole_batches_keeps_the_order_and_leaves_small_groups_whole() -> None:
    items = list(range(11))
    assert whole_batches(items, 4) == ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10])
    assert whole_batches(items[:3], 4) == ([0, 1, 2], [])  # under one batch: all now
    assert whole_batches(items[:8], 4) == (items[:8], [])
    assert whole_batches(items[:5], 0) == (items[:5], [])  # a batch size of 0 reads as 1
