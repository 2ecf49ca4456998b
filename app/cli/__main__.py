"""`python -m app.cli`: the same as the `isams-sync` console script."""

from app.cli import main

main()
