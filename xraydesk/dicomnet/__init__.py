"""XRayDesk on the DICOM network (no Qt): a Storage SCP that classifies what it receives,
query/retrieve from a PACS, and results back as DICOM (SR + heat-map Secondary Capture).

- ``config``: ``dicomnet.json`` (this node, allowed callers, known PACS, TLS);
- ``node``: ``StorageNode``, the listening node behind ``xraydesk listen``;
- ``worklist``: the ``dicom_worklist`` table in the results database;
- ``scu``: C-ECHO, C-FIND, C-MOVE, C-STORE as a caller (``xraydesk pacs``);
- ``result_objects``: the SR and Secondary Capture (highdicom);
- ``instance_files``: where received files go, with private permissions.

The names below are imported on first use (PEP 562): ``xraydesk listen`` and
``xraydesk pacs`` read ``config`` to build their options, and must not import torch
(through ``node``) for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.lazy_exports import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "ConfigError": "xraydesk.dicomnet.config",
    "NodeConfig": "xraydesk.dicomnet.config",
    "RemoteNode": "xraydesk.dicomnet.config",
    "TlsFiles": "xraydesk.dicomnet.config",
    "config_path": "xraydesk.dicomnet.config",
    "load_config": "xraydesk.dicomnet.config",
    "make_node": "xraydesk.dicomnet.config",
    "NodeStats": "xraydesk.dicomnet.node",
    "StorageNode": "xraydesk.dicomnet.node",
    "NOT_FOR_DIAGNOSIS": "xraydesk.dicomnet.result_objects",
    "ResultObjects": "xraydesk.dicomnet.result_objects",
    "ResultsError": "xraydesk.dicomnet.result_objects",
    "make_results": "xraydesk.dicomnet.result_objects",
    "DicomNetError": "xraydesk.dicomnet.scu",
    "StudyMatch": "xraydesk.dicomnet.scu",
    "StudyQuery": "xraydesk.dicomnet.scu",
    "TransferOutcome": "xraydesk.dicomnet.scu",
    "echo": "xraydesk.dicomnet.scu",
    "find_studies": "xraydesk.dicomnet.scu",
    "move_studies": "xraydesk.dicomnet.scu",
    "send_files": "xraydesk.dicomnet.scu",
    "send_results": "xraydesk.dicomnet.scu",
    "WorkItem": "xraydesk.dicomnet.worklist",
    "Worklist": "xraydesk.dicomnet.worklist",
    "WorklistError": "xraydesk.dicomnet.worklist",
}

if TYPE_CHECKING:
    from xraydesk.dicomnet.config import (
        ConfigError,
        NodeConfig,
        RemoteNode,
        TlsFiles,
        config_path,
        load_config,
        make_node,
    )
    from xraydesk.dicomnet.node import NodeStats, StorageNode
    from xraydesk.dicomnet.result_objects import (
        NOT_FOR_DIAGNOSIS,
        ResultObjects,
        ResultsError,
        make_results,
    )
    from xraydesk.dicomnet.scu import (
        DicomNetError,
        StudyMatch,
        StudyQuery,
        TransferOutcome,
        echo,
        find_studies,
        move_studies,
        send_files,
        send_results,
    )
    from xraydesk.dicomnet.worklist import WorkItem, Worklist, WorklistError


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "NOT_FOR_DIAGNOSIS",
    "ConfigError",
    "DicomNetError",
    "NodeConfig",
    "NodeStats",
    "RemoteNode",
    "ResultObjects",
    "ResultsError",
    "StorageNode",
    "StudyMatch",
    "StudyQuery",
    "TlsFiles",
    "TransferOutcome",
    "WorkItem",
    "Worklist",
    "WorklistError",
    "config_path",
    "echo",
    "find_studies",
    "load_config",
    "make_node",
    "make_results",
    "move_studies",
    "send_files",
    "send_results",
]
