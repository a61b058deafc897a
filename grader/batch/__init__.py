"""Grade many notebooks: a folder on this machine, or a Dask cluster."""
