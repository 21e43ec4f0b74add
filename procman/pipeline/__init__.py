"""CI pipelines generated from procman.yml (``procman pipeline generate``): the plan of jobs, the
header that lets a later generation tell an edited file from its own, and writing files whole."""
