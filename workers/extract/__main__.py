"""The extraction child process (see workers.extract.isolated); not meant to be run by hand."""
import sys

from workers.extract.isolated import child_main

sys.exit(child_main(sys.argv[1:]))
