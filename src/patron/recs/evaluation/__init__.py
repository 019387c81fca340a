"""Offline evaluation of recommenders: data sets, split protocols, metrics, a harness, search and reports."""
