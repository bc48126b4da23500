"""Events: the EventBus, the built-in hooks, event payload types and the OpenLineage hook."""
