"""Node kinds: ingest, transform, store and publish, and the registry that maps a layer to its node.

Importing this package registers the built-in kinds. Register a custom kind with
``@register_node("my_kind")``.
"""

from __future__ import annotations

from odibi_core.nodes.base import (
    Node,
    NodeContext,
    NodeContractError,
    NodeResult,
    get_node,
    register_node,
    registered_kinds,
    run_node,
)
from odibi_core.nodes.ingest import IngestNode
from odibi_core.nodes.store import PublishNode, StoreNode
from odibi_core.nodes.transform import TransformNode

__all__ = [
    "IngestNode",
    "Node",
    "NodeContext",
    "NodeContractError",
    "NodeResult",
    "PublishNode",
    "StoreNode",
    "TransformNode",
    "get_node",
    "register_node",
    "registered_kinds",
    "run_node",
]
