"""Reports: turn a sweep directory (Parquet + JSON only) into tidy tables and the paper's figures."""
