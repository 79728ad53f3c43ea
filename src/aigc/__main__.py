"""`python -m aigc ...` (what torchrun runs: `torchrun --nproc-per-node 2 -m aigc train ...`)."""

from aigc.cli.main import main

main()
