"""The extraction child process (see workers.engine.extract.isolated); not meant to be run by hand."""
import sys

from workers.engine.extract.isolated import child_main

sys.exit(child_main(sys.argv[1:]))
