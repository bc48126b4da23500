"""The pure core: steps, pipeline config, the DAG, parameters, errors and the rules they check. No pandas or pyspark import."""
