"""The `aigc` command line: one command tree, `--help` everywhere."""
