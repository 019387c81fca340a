"""Recommendations: models behind one contract, serving rules, evaluation, placements."""
