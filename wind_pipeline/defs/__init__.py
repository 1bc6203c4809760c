"""The Dagster layer over the ETL core: partitions, resources, IO manager, assets, checks, job."""
