"""Datasets: preparation of the public sets, the manifest contract, audit, splits and loading."""
