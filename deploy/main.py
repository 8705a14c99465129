"""Flex Template entry (FLEX_TEMPLATE_PYTHON_PY_FILE): the launcher runs this file with the
template parameters as ``--name=value``; ``khabar deploy launch`` checks them, builds the
same graph as ``khabar run`` and submits the job to Dataflow without waiting for it."""

import sys

from khabar.pipeline.commands.deploy import main

if __name__ == "__main__":
    sys.exit(main(["launch", *sys.argv[1:]]))
