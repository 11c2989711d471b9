"""Pure (AiiDA-free) core of ACE fitting with pacemaker: settings validation, input rendering, train/test split,
error metrics, evaluation with pyace and parity plots."""
