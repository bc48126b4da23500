"""Execution: the run plan, the data store, the executor, step runners and observers."""
