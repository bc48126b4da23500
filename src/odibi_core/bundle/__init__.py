"""The Databricks bundle: a pipeline's DAG as a job of wheel entry-point tasks.

Imports only the pure core and ``databricks-bundles``: neither pandas nor pyspark.
"""
