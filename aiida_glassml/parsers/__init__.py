"""Parsers of the aiida-glassml CalcJobs."""
